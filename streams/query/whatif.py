"""What if these events happened now? Conflicts that would open, change and close.

The hypothetical events go through the same boundary (``decode``) and the same engine as
real ones, applied to a copy made with ``Engine.snapshot``/``restore``: live state is never
touched. Envelope fields may be left out: ``specversion`` 1.0, ``id`` ``what-if-<n>``,
``source`` ``/what-if`` and ``time`` = the watermark (so "now" stays the state's "now").

A scoped caller's hypothesis runs on its own world: the copy forgets every other client
(``Engine.keep_clients``) before the events apply, and an event naming a client outside the
scope is refused whether or not that client exists. So nothing in the answer — what opens,
changes or closes, a rejection, a figure — depends on another client's contracts or spend.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson

from streams.engine import SEVERITY_RANK, Engine, EngineConfig
from streams.events import ContractSigned, Event, Rejection, SpendRecorded, decode
from streams.query.common import Exposures, conflict_figures, watermark
from streams.query.scope import EVERYTHING, Scope

__all__ = ["MAX_EVENTS", "BadHypothesis", "what_if", "what_if_snapshot"]

MAX_EVENTS = 1000


class BadHypothesis(ValueError):
    """A hypothetical event that does not decode; the message names its index and why."""

    def __init__(self, message: str, index: int | None = None) -> None:
        super().__init__(message)
        self.index = index


def _events(raw: Sequence[Any], now: str | None, scope: Scope) -> list[Event]:
    if len(raw) > MAX_EVENTS:
        raise BadHypothesis(f"at most {MAX_EVENTS} hypothetical events, got {len(raw)}")
    events = []
    for i, doc in enumerate(raw):
        if not isinstance(doc, Mapping):
            raise BadHypothesis(f"events[{i}]: expected a JSON object", i)
        doc = {"specversion": "1.0", "id": f"what-if-{i}", "source": "/what-if", **doc}
        if "time" not in doc:
            if now is None:
                raise BadHypothesis(f"events[{i}]: time is required while the state is empty", i)
            doc["time"] = now
        event = decode(orjson.dumps(doc))
        if isinstance(event, Rejection):
            raise BadHypothesis(f"events[{i}]: {event}", i)
        if isinstance(event, ContractSigned | SpendRecorded) and not scope.sees(event.data.client):
            raise BadHypothesis(
                f"events[{i}]: data.client: {event.data.client!r} is not a client this token "
                "may see",
                i,
            )
        events.append(event)
    return events


def _all_figures(engine: Engine, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
    exposures = Exposures(engine)
    figures: dict[str, dict[str, Any]] = {}
    for key in keys:
        client, vendor, rival = key.split("|")
        figures[key] = conflict_figures(engine, client, vendor, rival, exposures)
    return figures


def what_if(engine: Engine, events: Sequence[Any], scope: Scope = EVERYTHING) -> dict[str, Any]:
    """`what_if_snapshot` on a copy of `engine` (which is left as it was)."""
    return what_if_snapshot(engine.snapshot(), engine.config, events, scope)


def what_if_snapshot(
    blob: bytes, config: EngineConfig, events: Sequence[Any], scope: Scope = EVERYTHING
) -> dict[str, Any]:
    """Apply `events` to the state in `blob` (``Engine.snapshot``) and report the difference.

    Split from `what_if` so an adapter can take the snapshot where the live engine is
    consistent (the event loop) and do the rest elsewhere (a thread).
    """
    copy = Engine.restore(blob, config)
    if scope.clients is not None:
        copy.keep_clients(scope.clients)
    parsed = _events(events, watermark(copy), scope)
    before_open = set(copy.open)
    before: dict[str, dict[str, Any] | None] = {**_all_figures(copy, before_open)}
    watermark_before = watermark(copy)
    records: list[dict[str, Any]] = []
    rejected: list[dict[str, Any]] = []
    for i, event in enumerate(parsed):
        outcome = copy.apply(event)
        if outcome.rejection is not None:
            rejected.append({"index": i, "id": event.id, "reason": str(outcome.rejection)})
        records.extend(r.to_dict() for r in outcome.records)
    touched = before_open | set(copy.open) | {r["dedup_key"] for r in records}
    after = _all_figures(copy, touched)
    for key in touched - before_open:
        before[key] = None  # never open before: its figures then are not asked for
    opened, changed, closed = [], [], []
    for key in sorted(touched, key=lambda k: (_rank(after[k], before.get(k)), k)):
        was, now = before.get(key), after[key]
        entry = {"dedup_key": key, "before": was, "after": now}
        if was is None and now["open"]:
            opened.append(entry)
        elif was is not None and not now["open"]:
            closed.append(entry)
        elif was is not None and was != now:
            changed.append(entry)
    return {
        "watermark": {"before": watermark_before, "after": watermark(copy)},
        "applied": len(parsed) - len(rejected),
        "rejected": rejected,
        "opened": opened,
        "changed": changed,
        "closed": closed,
        "records": records,
    }


def _rank(after: dict[str, Any], before: dict[str, Any] | None) -> int:
    severity = after["severity"] or (before or {}).get("severity") or "warning"
    return SEVERITY_RANK[severity]
