"""One path from raw bytes to state: decode, apply, keep the evidence and the last record.

The worker, ``stakewatch backtest`` and the offline queries (``explain``, ``whatif``) all
run records through ``Ledger.process``, so they cannot disagree on what a record did:
``decode_flat`` (the fast path or the models), ``Engine.apply_flat``, then, for an applied
event, the provenance table (which events stand behind each figure) and the latest firing
record of each open conflict (what the API and the dashboards show as its last alert).
"""

from __future__ import annotations

from collections.abc import Iterable

from streams.engine.engine import Engine, Outcome
from streams.engine.provenance import Provenance
from streams.engine.records import AlertRecord
from streams.events.fast import decode_flat
from streams.events.rejection import Rejection

__all__ = ["Ledger"]


class Ledger:
    """The engine with what adapters keep beside it.

    ``provenance`` None keeps no evidence (backtest: nothing to explain, nothing to pay
    for on its hot path). ``latest`` maps each open conflict's dedup key to its last firing
    record, across every lease.
    """

    __slots__ = ("engine", "latest", "provenance")

    def __init__(
        self,
        engine: Engine,
        provenance: Provenance | None = None,
        latest: dict[str, AlertRecord] | None = None,
    ) -> None:
        self.engine = engine
        self.provenance = provenance
        self.latest: dict[str, AlertRecord] = {} if latest is None else latest

    def process(self, raw: bytes, now: int | None = None) -> tuple[str | None, Outcome]:
        """Decode and apply one record read at wall-clock ``now`` (µs since the epoch; None:
        no ``future`` check): its event type (None when it did not decode) and outcome."""
        flat = decode_flat(raw)
        if isinstance(flat, Rejection):
            return None, self.engine.reject(flat)
        outcome = self.engine.apply_flat(flat, now)
        if outcome.rejection is None:
            if self.provenance is not None:
                self.provenance.observe_flat(flat)
            if outcome.records:
                self.keep(outcome.records)
        return flat[0], outcome

    def keep(self, records: Iterable[AlertRecord]) -> None:
        """Track the latest firing record of each open conflict."""
        latest = self.latest
        for record in records:
            if record.status == "firing":
                latest[record.dedup_key] = record
            else:
                latest.pop(record.dedup_key, None)
