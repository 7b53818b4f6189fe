"""The notification log's rule: never tell a receiver a state it already knows, never resolve
what it was not told, never re-send a replayed record; and the log store contract."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from alert_samples import SEED_FIRING, SEED_RESOLVED, make_record

from alerts.notification_log import (
    HANDLED_LIMIT,
    SENDING,
    InMemoryNotificationLog,
    NotificationLog,
    Notified,
    decide,
    updated,
)

FIRING = make_record(SEED_FIRING)
RESOLVED = make_record(SEED_RESOLVED)


def test_first_firing_is_sent_and_a_resolve_without_firing_is_not() -> None:
    assert decide(None, FIRING) == "send"
    assert decide(None, RESOLVED) == "never_fired"


def test_same_state_is_not_sent_twice() -> None:
    told = updated(None, FIRING, "delivered", told=True)
    assert decide(told, FIRING) == "already_handled"
    rebuilt = make_record(SEED_FIRING, event_id="rebuild-1")
    assert decide(told, rebuilt) == "same_state"


def test_severity_change_and_resolve_are_sent() -> None:
    told = updated(None, FIRING, "delivered", told=True)
    assert decide(told, make_record(SEED_FIRING, severity="high", event_id="e9")) == "send"
    assert decide(told, RESOLVED) == "send"


def test_replaying_a_finished_history_sends_nothing() -> None:
    log = updated(updated(None, FIRING, "delivered", True), RESOLVED, "delivered", True)
    assert (log.status, log.severity) == ("resolved", "critical")
    assert decide(log, FIRING) == "already_handled"
    assert decide(log, RESOLVED) == "already_handled"
    reopened = make_record(SEED_FIRING, event_id="seed-0100", event_time="2025-07-01T00:00:00Z")
    assert decide(log, reopened) == "send"


def test_a_failed_record_is_handled_but_not_told() -> None:
    failed = updated(None, FIRING, "failed: HTTP 400 invalid_payload", told=False)
    assert failed.status is None and failed.handled[-1].outcome.startswith("failed")
    assert decide(failed, FIRING) == "already_handled"
    assert decide(failed, RESOLVED) == "never_fired"


def test_an_intent_without_outcome_is_in_doubt_until_the_outcome_settles_it() -> None:
    told = updated(None, FIRING, "delivered", told=True)
    intent = updated(told, RESOLVED, SENDING, told=False)
    assert (intent.status, intent.event_id) == ("firing", FIRING.event_id)  # not told yet
    assert decide(intent, RESOLVED) == "in_doubt"  # killed mid-request: send again
    assert decide(intent, FIRING) == "already_handled"
    settled = updated(intent, RESOLVED, "delivered", told=True)
    assert [h.outcome for h in settled.handled] == ["delivered", "delivered"]
    assert decide(settled, RESOLVED) == "already_handled"


def test_handled_list_is_bounded() -> None:
    value: Notified | None = None
    for i in range(HANDLED_LIMIT + 10):
        sev = "high" if i % 2 else "critical"
        value = updated(value, make_record(SEED_FIRING, event_id=f"e{i}", severity=sev), "d", True)
    assert value is not None and len(value.handled) == HANDLED_LIMIT
    assert value.handled[-1].event_id == f"e{HANDLED_LIMIT + 9}"


# The store contract, run against every implementation; the Kafka-backed one runs these
# tests against the real broker in tests/integration/test_notification_log_kafka.py.
LOGS: list[Callable[[], NotificationLog]] = [InMemoryNotificationLog]


@pytest.fixture(params=LOGS, ids=lambda f: f.__name__)
def log_factory(request: pytest.FixtureRequest) -> Callable[[], NotificationLog]:
    return request.param


async def test_store_keeps_values_per_receiver_and_key(log_factory) -> None:
    log = log_factory()
    value = updated(None, FIRING, "delivered", told=True)
    assert await log.get("slack", FIRING.dedup_key) is None
    await log.put("slack", FIRING.dedup_key, value)
    assert await log.get("slack", FIRING.dedup_key) == value
    assert await log.get("pagerduty", FIRING.dedup_key) is None
    assert await log.get("slack", "google|scale-ai|openai") is None
    newer = updated(value, RESOLVED, "delivered", told=True)
    await log.put("slack", FIRING.dedup_key, newer)
    assert await log.get("slack", FIRING.dedup_key) == newer
