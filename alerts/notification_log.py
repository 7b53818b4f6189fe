"""What each receiver has already been told, per conflict: the notification log.

Keyed by ``(receiver, dedup_key)``; the value says the last state the receiver was told
(status, severity and the event that caused it) and remembers the last few records already
*handled* for that key (told, recorded by ``--no-deliver``, or given up), by
``(event_id, status, severity)``.

Why more than the last state: replaying a history ``firing → resolved`` a second time
re-emits the ``firing`` while the log's last state is ``resolved``; comparing states alone
would page again. The handled list recognises the replayed record as one already dealt with.
A *new* record (a new event) is sent unless the receiver already knows that exact state.

``decide`` is the pure rule; the dispatcher asks it before each delivery.

=========================================================  ==========================
situation                                                  decision
=========================================================  ==========================
``(event_id, status, severity)`` already handled           skip ``already_handled``
an attempt started and its outcome was never logged        send, ``in_doubt`` (below)
receiver last told this status and severity                skip ``same_state``
``resolved`` and the receiver was never told it fired      skip ``never_fired``
otherwise                                                  send
=========================================================  ==========================

**Intent before sending.** Before the first HTTP attempt the dispatcher writes the record as
``handled`` with the outcome ``SENDING``; the outcome write after the answer replaces it. A
process killed in between leaves the intent behind, and after the restart the record is
*in doubt*: the receiver may or may not have it. It is sent again (a lost page is worse than
a repeated one), and receivers that can say so mark the repeat (Slack: "sent again after a
restart"); PagerDuty and Alertmanager fold it by ``dedup_key`` / labels. Without the intent
a restart could not tell "never tried" from "maybe told".

The in-memory log is for tests and single-process runs; the Kafka-backed one (a compacted
topic keyed by ``receiver|dedup_key``) implements the same Protocol and must pass the same
tests (``tests/unit/alerts/test_alerts_notification_log.py``; the Kafka one runs them in
``tests/integration/test_notification_log_kafka.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal, Protocol

from alerts.record import AlertRecord, Severity, Status

__all__ = [
    "HANDLED_LIMIT",
    "SENDING",
    "Decision",
    "Handled",
    "InMemoryNotificationLog",
    "NotificationLog",
    "Notified",
    "decide",
    "updated",
]

#: How many handled records each (receiver, dedup_key) remembers.
HANDLED_LIMIT = 32
#: ``Handled.outcome`` of an intent: an attempt started, its outcome not yet logged.
SENDING = "sending"


@dataclass(frozen=True, slots=True)
class Handled:
    """One record already dealt with for a receiver, and how (``delivered``, ``recorded``,
    ``failed: HTTP 400 invalid_payload``, …)."""

    event_id: str
    status: Status
    severity: Severity
    outcome: str = "delivered"


@dataclass(frozen=True, slots=True)
class Notified:
    """The log's value for one (receiver, dedup_key).

    ``status``/``severity``/``event_id`` are the last state the receiver was told (``None``
    when it was never told anything, e.g. only failures so far); ``handled`` the most recent
    records dealt with, oldest first, at most ``HANDLED_LIMIT``.
    """

    status: Status | None
    severity: Severity | None
    event_id: str | None
    handled: tuple[Handled, ...] = field(default=())

    def knows(self, record: AlertRecord) -> bool:
        """The record was dealt with for good (an intent alone does not count)."""
        return any(h.outcome != SENDING and _same(h, record) for h in self.handled)

    def in_doubt(self, record: AlertRecord) -> bool:
        """An attempt to send the record started and its outcome was never logged."""
        return any(h.outcome == SENDING and _same(h, record) for h in self.handled)


def _same(handled: Handled, record: AlertRecord) -> bool:
    return (
        handled.event_id == record.event_id
        and handled.status == record.status
        and handled.severity == record.severity
    )


class NotificationLog(Protocol):
    """Storage of ``Notified`` values. Implementations must be safe to call from one event
    loop concurrently for different keys; the dispatcher never races on one key."""

    async def get(self, receiver: str, dedup_key: str) -> Notified | None: ...

    async def put(self, receiver: str, dedup_key: str, value: Notified) -> None: ...


Decision = Literal["send", "in_doubt", "already_handled", "same_state", "never_fired"]


def decide(previous: Notified | None, record: AlertRecord) -> Decision:
    """Whether to send ``record`` to a receiver whose log entry is ``previous`` (pure)."""
    if previous is not None:
        if previous.knows(record):
            return "already_handled"
        if previous.in_doubt(record):
            return "in_doubt"
        if previous.status == record.status and previous.severity == record.severity:
            return "same_state"
    told = previous.status if previous is not None else None
    if record.status == "resolved" and told != "firing":
        return "never_fired"
    return "send"


def updated(previous: Notified | None, record: AlertRecord, outcome: str, told: bool) -> Notified:
    """The log value after ``record`` was handled (``told``: the receiver now knows it).

    An intent for the same record (``SENDING``) is replaced, so the final outcome settles it.
    """
    base = previous or Notified(None, None, None)
    kept = tuple(h for h in base.handled if not (h.outcome == SENDING and _same(h, record)))
    handled = (*kept, Handled(record.event_id, record.status, record.severity, outcome))
    handled = handled[-HANDLED_LIMIT:]
    if told:
        return Notified(record.status, record.severity, record.event_id, handled)
    return replace(base, handled=handled)


class InMemoryNotificationLog:
    """A dict. Pass the same instance to a new dispatcher to simulate a restart."""

    def __init__(self) -> None:
        self._data: dict[tuple[str, str], Notified] = {}

    async def get(self, receiver: str, dedup_key: str) -> Notified | None:
        return self._data.get((receiver, dedup_key))

    async def put(self, receiver: str, dedup_key: str, value: Notified) -> None:
        self._data[(receiver, dedup_key)] = value

    def items(self) -> list[tuple[tuple[str, str], Notified]]:
        """Everything stored, for tests and debugging."""
        return sorted(self._data.items())

    def __len__(self) -> int:
        return len(self._data)
