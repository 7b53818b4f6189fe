"""classify() decides retries from the answer alone; the retry loop honours Retry-After,
backs off exponentially with jitter, and gives up at the record's give-up time."""

from __future__ import annotations

import datetime as dt

import pytest

from alerts.receivers.base import Delivery
from alerts.retry import (
    OK,
    PERMANENT,
    RetryPolicy,
    backoff,
    classify,
    deliver_with_retry,
    parse_retry_after,
    retry,
)
from alerts.testing import FakeClock


@pytest.mark.parametrize(
    ("status", "headers", "verdict"),
    [
        (200, {}, OK),  # Slack "ok"
        (202, {}, OK),  # PagerDuty accepted
        (204, {}, OK),
        (429, {"Retry-After": "30"}, retry(30.0)),  # Slack rate limit
        (429, {"retry-after": "7"}, retry(7.0)),
        (429, {}, retry(None)),  # PagerDuty throttling has no header
        (400, {}, PERMANENT),  # Slack invalid_payload, PagerDuty invalid event
        (403, {}, PERMANENT),  # Slack action_prohibited
        (404, {}, PERMANENT),  # Slack channel_not_found
        (410, {}, PERMANENT),  # Slack channel_is_archived
        (301, {}, PERMANENT),  # a redirect: wrong URL
        (408, {}, retry(None)),
        (500, {}, retry(None)),
        (502, {}, retry(None)),
        (503, {"Retry-After": "5"}, retry(5.0)),
        (None, {}, retry(None)),  # connection refused / reset / timeout
    ],
)
def test_classify(status: int | None, headers: dict[str, str], verdict: object) -> None:
    assert classify(status, headers) == verdict


def test_retry_after_as_http_date_needs_now() -> None:
    now = dt.datetime(2025, 6, 12, 14, 0, tzinfo=dt.UTC)
    assert parse_retry_after("Thu, 12 Jun 2025 14:00:45 GMT", now) == 45.0
    assert parse_retry_after("Thu, 12 Jun 2025 13:00:00 GMT", now) == 0.0
    assert parse_retry_after("Thu, 12 Jun 2025 14:00:45 GMT") is None
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after("-3") == 0.0


def test_backoff_grows_exponentially_with_bounded_jitter() -> None:
    policy = RetryPolicy(initial=1, multiplier=2, max_wait=60, jitter=0.25)
    assert [backoff(n, policy, 0.0) for n in range(1, 8)] == [1, 2, 4, 8, 16, 32, 60]
    assert backoff(3, policy, 0.999) == pytest.approx(4 * 1.24975)
    assert backoff(10, policy, 0.999) == 60


def _scripted(*verdicts: tuple[int | None, object]):
    answers = list(verdicts)
    calls: list[int] = []

    async def attempt() -> Delivery:
        status, verdict = answers[min(len(calls), len(answers) - 1)]
        calls.append(1)
        return Delivery("x", verdict, status, f"HTTP {status}")  # type: ignore[arg-type]

    return attempt, calls


async def test_retry_after_is_honoured_exactly(clock: FakeClock) -> None:
    attempt, _ = _scripted((429, retry(30.0)), (200, OK))
    result = await deliver_with_retry(
        attempt, RetryPolicy(), sleep=clock.sleep, clock=clock, rand=lambda: 0.5
    )
    assert result.ok and result.attempts == 2
    assert clock.sleeps == [30.0]


async def test_permanent_answer_is_not_retried(clock: FakeClock) -> None:
    attempt, calls = _scripted((400, PERMANENT))
    result = await deliver_with_retry(attempt, RetryPolicy(), sleep=clock.sleep, clock=clock)
    assert len(calls) == 1 and not result.ok and not result.gave_up
    assert clock.sleeps == []


async def test_gives_up_when_the_next_wait_would_pass_the_give_up_time(clock: FakeClock) -> None:
    attempt, calls = _scripted((500, retry()))
    policy = RetryPolicy(initial=1, multiplier=2, max_wait=8, jitter=0, give_up_after=20)
    seen: list[float] = []
    result = await deliver_with_retry(
        attempt,
        policy,
        sleep=clock.sleep,
        clock=clock,
        on_retry=lambda d, wait: seen.append(wait),
    )
    assert result.gave_up and result.status == 500
    assert clock.sleeps == [1, 2, 4, 8]  # 15 s spent; another 8 s would pass 20 s
    assert seen == clock.sleeps and result.attempts == len(calls) == 5
