"""The state a query needs, built from an event file: the CLI twins' stand-in for a worker.

Lines are applied exactly as ``stakewatch backtest`` applies them (decode, then the engine);
applied events also feed ``Provenance`` and the last firing record of each open conflict is
kept, like the worker's ``latest``, so API and CLI answers come from the same inputs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from streams.engine import AlertRecord, Engine, EngineConfig
from streams.engine.provenance import Provenance
from streams.events import Rejection, decode
from streams.query.whatif import BadHypothesis

__all__ = ["MAX_SKIPPED", "State", "load_lines", "read_hypotheses"]

MAX_SKIPPED = 1000


@dataclass(slots=True)
class State:
    """What the API reads from a worker: engine, evidence, last record per open conflict."""

    engine: Engine
    provenance: Provenance = field(default_factory=Provenance)
    latest: dict[str, AlertRecord] = field(default_factory=dict)
    applied: int = 0
    rejected: int = 0
    # (line number, rejection) of the first MAX_SKIPPED rejected lines, for the CLI twins to
    # say what they skipped; ``rejected`` counts them all.
    skipped: list[tuple[int, Rejection]] = field(default_factory=list)

    def apply(self, raw: bytes, line: int = 0, now: int | None = None) -> None:
        event = decode(raw)
        rejection = event if isinstance(event, Rejection) else None
        if rejection is None:
            outcome = self.engine.apply(event, now)
            rejection = outcome.rejection
        if rejection is not None:
            self.rejected += 1
            if len(self.skipped) < MAX_SKIPPED:
                self.skipped.append((line, rejection))
            return
        self.applied += 1
        self.provenance.observe(event)
        for record in outcome.records:
            if record.status == "firing":
                self.latest[record.dedup_key] = record
            else:
                self.latest.pop(record.dedup_key, None)


def load_lines(
    lines: Iterable[bytes], config: EngineConfig | None = None, now: int | None = None
) -> State:
    """Apply NDJSON lines in order, as read at `now` (blank lines skipped, bad ones counted
    as rejected)."""
    state = State(Engine(config))
    for number, raw in enumerate(lines, start=1):
        raw = raw.strip()
        if raw:
            state.apply(raw, number, now)
    return state


def read_hypotheses(lines: Iterable[bytes]) -> tuple[list[Any], list[int]]:
    """Hypothetical events from NDJSON (blank lines skipped) and the line each came from."""
    events, numbers = [], []
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            events.append(orjson.loads(raw))
        except orjson.JSONDecodeError as exc:
            raise BadHypothesis(f"line {number}: not JSON ({exc})") from None
        numbers.append(number)
    return events, numbers
