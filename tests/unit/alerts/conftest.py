"""Fixtures for the alert-delivery tests: seed-like records, an HTTP client, fake APIs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from alert_samples import SEED_FIRING, SEED_RESOLVED, make_record

from alerts.record import AlertRecord
from alerts.testing import FakeApi, FakeClock


@pytest.fixture
def record() -> Callable[..., AlertRecord]:
    return make_record


@pytest.fixture
def seed() -> tuple[AlertRecord, AlertRecord]:
    """firing critical google|scale-ai|meta, then its resolution."""
    return make_record(SEED_FIRING), make_record(SEED_RESOLVED)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5.0) as c:
        yield c


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def slack_api() -> AsyncIterator[FakeApi]:
    async with FakeApi.slack() as api:
        yield api


@pytest.fixture
async def pd_api() -> AsyncIterator[FakeApi]:
    async with FakeApi.pagerduty() as api:
        yield api
