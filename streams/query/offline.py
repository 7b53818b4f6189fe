"""The state a query needs, built from an event file: the CLI twins' stand-in for a worker.

Lines go through ``Ledger.process``, the path the worker and ``stakewatch backtest`` take
(decode, the engine, then the evidence and the last firing record of each open conflict),
so API and CLI answers come from the same inputs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from streams.engine import AlertRecord, Engine, EngineConfig
from streams.engine.ledger import Ledger
from streams.engine.provenance import Provenance
from streams.events import Rejection
from streams.query.whatif import BadHypothesis

__all__ = ["MAX_SKIPPED", "State", "load_lines", "read_hypotheses"]

MAX_SKIPPED = 1000


@dataclass(slots=True)
class State:
    """What the API reads from a worker: engine, evidence, last record per open conflict —
    the ledger, fed as the worker feeds its own."""

    ledger: Ledger
    applied: int = 0
    rejected: int = 0
    # (line number, rejection) of the first MAX_SKIPPED rejected lines, for the CLI twins to
    # say what they skipped; ``rejected`` counts them all.
    skipped: list[tuple[int, Rejection]] = field(default_factory=list)

    @property
    def engine(self) -> Engine:
        return self.ledger.engine

    @property
    def provenance(self) -> Provenance:
        provenance = self.ledger.provenance
        assert provenance is not None  # an offline state keeps evidence
        return provenance

    @property
    def latest(self) -> dict[str, AlertRecord]:
        return self.ledger.latest

    def apply(self, raw: bytes, line: int = 0, now: int | None = None) -> None:
        rejection = self.ledger.process(raw, now)[1].rejection
        if rejection is not None:
            self.rejected += 1
            if len(self.skipped) < MAX_SKIPPED:
                self.skipped.append((line, rejection))
            return
        self.applied += 1


def load_lines(
    lines: Iterable[bytes], config: EngineConfig | None = None, now: int | None = None
) -> State:
    """Apply NDJSON lines in order, as read at `now` (blank lines skipped, bad ones counted
    as rejected)."""
    state = State(Ledger(Engine(config), Provenance()))
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
