"""The floor of any replay: reading the lines and JSON-parsing each one, nothing else.

Offline throughput (`stakewatch backtest`, a rebuild from the topics) is stated as a ratio
to this figure, measured in the same run on the same lines (issue 18): the ratio says how
much of a replay's time is the monitor's own work — decoding, validating, applying,
evaluating — whatever the machine's speed that day. A ratio of 1.0 would be a replay that
costs no more than `orjson.loads` over the file.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterable
from typing import Any

import orjson

from streams.backtest import iter_lines

__all__ = ["parse_seconds", "read_parse"]


def parse_seconds(lines: Iterable[bytes]) -> tuple[int, float]:
    """(lines, seconds) to `orjson.loads` each of `lines` (already read)."""
    loads = orjson.loads
    count = 0
    started = time.perf_counter()
    for raw in lines:
        loads(raw)
        count += 1
    return count, time.perf_counter() - started


def read_parse(ndjson: bytes, rounds: int = 2) -> dict[str, Any]:
    """Events/s to read NDJSON line by line (the backtest's reader) and parse each line;
    the best of ``rounds`` passes (the floor is the fastest the machine managed)."""
    best = float("inf")
    count = 0
    for _ in range(rounds):
        count, seconds = parse_seconds(raw for _, raw in iter_lines(io.BytesIO(ndjson)))
        best = min(best, seconds)
    return {
        "value": round(count / best) if best else None,
        "unit": "events/s",
        "params": {
            "path": "iter_lines over in-memory NDJSON + orjson.loads per line",
            "lines": count,
            "seconds": round(best, 3),
            "rounds": rounds,
        },
    }
