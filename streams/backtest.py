"""Offline adapter: NDJSON lines through the ledger (the worker's path), alert records and
dead letters out."""

from __future__ import annotations

import base64
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

import orjson

from streams.engine import AlertRecord, Engine
from streams.engine.ledger import Ledger
from streams.events import Rejection

__all__ = ["BacktestSummary", "dead_letter_line", "iter_lines", "run_backtest", "write_record"]


@dataclass(slots=True)
class BacktestSummary:
    read: int = 0
    blank: int = 0
    applied: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    alerts: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict:
        return {
            "events_read": self.read,
            "applied": self.applied,
            "rejected": sum(self.rejected.values()),
            "rejected_by_reason": dict(sorted(self.rejected.items())),
            "alerts": sum(self.alerts.values()),
            "alerts_by_status": dict(sorted(self.alerts.items())),
            "blank_lines": self.blank,
        }


def iter_lines(stream: BinaryIO) -> Iterator[tuple[int, bytes]]:
    """(line number, raw bytes without the newline) for every line of an NDJSON stream."""
    for number, line in enumerate(stream, start=1):
        yield number, line.rstrip(b"\r\n")


def dead_letter_line(raw: bytes, rejection: Rejection, **where: object) -> bytes:
    """One dead-letter JSON line: the original bytes (text, or base64 if not UTF-8) + reason."""
    doc: dict[str, object] = {"reason": str(rejection), "code": rejection.code.value, **where}
    try:
        doc["original"] = raw.decode("utf-8")
    except UnicodeDecodeError:
        doc["original_base64"] = base64.b64encode(raw).decode("ascii")
    return orjson.dumps(doc) + b"\n"


def run_backtest(
    engine: Engine,
    lines: Iterable[tuple[int, bytes]],
    emit: Callable[[AlertRecord], None],
    dead_letter: BinaryIO | None = None,
    now: int | None = None,
) -> BacktestSummary:
    """Apply every line in order, as read at `now` (microseconds; None: no `future` check);
    `emit(record)` for each alert record, in SPEC order."""
    summary = BacktestSummary()
    process = Ledger(engine).process  # no evidence kept: nothing here explains
    for number, raw in lines:
        if not raw.strip():
            summary.blank += 1
            continue
        summary.read += 1
        outcome = process(raw, now)[1]
        rejection = outcome.rejection
        if rejection is not None:
            summary.rejected[rejection.code.value] += 1
            if dead_letter is not None:
                dead_letter.write(dead_letter_line(raw, rejection, line=number))
            continue
        summary.applied += 1
        for record in outcome.records:
            summary.alerts[record.status] += 1
            emit(record)
    return summary


def write_record(out: BinaryIO) -> Callable[[AlertRecord], None]:
    def emit(record: AlertRecord) -> None:
        out.write(record.to_json() + b"\n")

    return emit
