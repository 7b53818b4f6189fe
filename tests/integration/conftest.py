"""Real-broker fixtures: one embedded Tansu per session, plus private ones on demand."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from streams.kafka.broker import EmbeddedBroker


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """The shared broker. Tests must not pause, restart or stop it: use ``broker_factory``."""
    with EmbeddedBroker(log_dir=tmp_path_factory.mktemp("broker")) as shared:
        yield shared


@pytest.fixture
def broker_factory(tmp_path: Path) -> Iterator[Callable[[], EmbeddedBroker]]:
    """Start private brokers (for pause/restart/fault tests); all are stopped at teardown."""
    started: list[EmbeddedBroker] = []

    def make() -> EmbeddedBroker:
        own = EmbeddedBroker(log_dir=tmp_path)
        started.append(own)
        own.start()
        return own

    yield make
    for own in started:
        own.stop()


@pytest.fixture
def topic_name(request: pytest.FixtureRequest) -> str:
    """A topic name no other test uses, so tests can share the session broker."""
    return f"test.{request.node.name[:40]}.{uuid.uuid4().hex[:8]}"
