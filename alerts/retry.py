"""When to retry a delivery, and how long to wait: a pure ``classify`` plus a retry loop.

``classify(status, headers)`` is the one place that decides whether an HTTP answer is a
success, worth retrying, or final (the ``Retrier.Check`` of Alertmanager's ``notify/``):

=====================  ==========================================================
answer                 verdict
=====================  ==========================================================
2xx                    ok (Slack answers ``200 ok``, PagerDuty ``202``)
429                    retry, after ``Retry-After`` when the receiver sent one
408, 5xx               retry (a ``Retry-After`` on a 503 is honoured too)
other 4xx, 1xx, 3xx    permanent (Slack ``400 invalid_payload``, ``403``,
                       ``404 channel_not_found``, ``410 channel_is_archived``;
                       PagerDuty ``400``; redirects mean a wrong URL)
no answer (``None``)   retry (connection refused, reset, timeout)
=====================  ==========================================================

``deliver_with_retry`` drives the attempts with tenacity: exponential backoff with jitter,
``Retry-After`` taking precedence, and a give-up time per record. The sleep, the monotonic
clock and the random source are injected, so tests run a "30 s outage" in milliseconds.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

import tenacity

if TYPE_CHECKING:
    from alerts.receivers.base import Delivery

__all__ = [
    "OK",
    "PERMANENT",
    "RetryPolicy",
    "Verdict",
    "backoff",
    "classify",
    "deliver_with_retry",
    "parse_retry_after",
    "retry",
]

Outcome = Literal["ok", "retry", "permanent"]


@dataclass(frozen=True, slots=True)
class Verdict:
    """What to do with an answer: ``ok``, ``retry`` (optionally after N seconds), ``permanent``."""

    outcome: Outcome
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"

    @property
    def retryable(self) -> bool:
        return self.outcome == "retry"


OK = Verdict("ok")
PERMANENT = Verdict("permanent")


def retry(after: float | None = None) -> Verdict:
    """A retry verdict, honouring ``after`` seconds when the receiver said so."""
    return Verdict("retry", after)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    for key, val in headers.items():
        if key.lower() == lowered:
            return val
    return None


def parse_retry_after(value: str | None, now: dt.datetime | None = None) -> float | None:
    """``Retry-After`` as seconds: delta-seconds, or an HTTP date (needs ``now``)."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        seconds = float(value)
    except ValueError:
        seconds = None
    if seconds is not None:
        return max(0.0, seconds) if seconds == seconds else None  # NaN → None
    if now is None:
        return None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - now).total_seconds())


def classify(
    status: int | None, headers: Mapping[str, str] | None = None, *, now: dt.datetime | None = None
) -> Verdict:
    """Verdict for one HTTP answer (``status=None``: no answer at all). Pure."""
    if status is None:
        return retry()
    if 200 <= status < 300:
        return OK
    if status == 429 or status == 408 or 500 <= status < 600:
        return retry(parse_retry_after(_header(headers or {}, "Retry-After"), now))
    return PERMANENT


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Backoff ``initial * multiplier**(n-1)`` capped at ``max_wait``, plus up to ``jitter``
    of it at random; a record is given up once the next wait would pass ``give_up_after``
    seconds since its first attempt. A ``Retry-After`` longer than ``max_retry_after`` is
    capped (a receiver asking for an hour still gets retried within the cap)."""

    initial: float = 1.0
    multiplier: float = 2.0
    max_wait: float = 60.0
    jitter: float = 0.25
    give_up_after: float = 3600.0
    max_retry_after: float = 900.0

    def __post_init__(self) -> None:
        if self.initial <= 0 or self.multiplier < 1 or self.max_wait < self.initial:
            raise ValueError(f"bad backoff in {self!r}")
        if self.jitter < 0 or self.give_up_after < 0 or self.max_retry_after < 0:
            raise ValueError(f"negative durations in {self!r}")


def backoff(attempt: int, policy: RetryPolicy, rand: float) -> float:
    """Wait before attempt ``attempt + 1`` (``attempt`` ≥ 1 failed so far); ``rand`` in [0, 1)."""
    base = min(policy.max_wait, policy.initial * policy.multiplier ** (attempt - 1))
    return min(policy.max_wait, base * (1 + policy.jitter * rand))


class _Retryable(Exception):
    def __init__(self, delivery: Delivery) -> None:
        super().__init__(delivery.detail)
        self.delivery = delivery


Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]


async def deliver_with_retry(
    attempt: Callable[[], Awaitable[Delivery]],
    policy: RetryPolicy,
    *,
    sleep: Sleep,
    clock: Clock = time.monotonic,
    rand: Callable[[], float] = random.random,
    on_retry: Callable[[Delivery, float], None] | None = None,
) -> Delivery:
    """Run ``attempt`` until it is not ``retry`` or the give-up time would pass.

    Returns the last ``Delivery`` with ``attempts`` set; a record given up carries
    ``gave_up=True`` and the last answer.
    """
    deadline = clock() + policy.give_up_after

    def wait(state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        after = exc.delivery.verdict.retry_after if isinstance(exc, _Retryable) else None
        if after is not None:
            return min(after, policy.max_retry_after)
        return backoff(state.attempt_number, policy, rand())

    def stop(state: tenacity.RetryCallState) -> bool:
        return clock() + state.upcoming_sleep > deadline

    def before_sleep(state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        if on_retry is not None and isinstance(exc, _Retryable):
            on_retry(replace(exc.delivery, attempts=state.attempt_number), state.upcoming_sleep)

    retrying = tenacity.AsyncRetrying(
        sleep=sleep,
        wait=wait,
        stop=stop,
        retry=tenacity.retry_if_exception_type(_Retryable),
        before_sleep=before_sleep,
        reraise=True,
    )
    number = 0
    delivery: Delivery | None = None
    try:
        async for try_ in retrying:
            with try_:
                number = try_.retry_state.attempt_number
                delivery = await attempt()
                if delivery.verdict.retryable:
                    raise _Retryable(delivery)
    except _Retryable as exc:
        return replace(exc.delivery, attempts=number, gave_up=True)
    assert delivery is not None  # tenacity ran at least one attempt
    return replace(delivery, attempts=number)
