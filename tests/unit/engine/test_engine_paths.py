"""The engine's two entry points agree, and its time formatting is the records' format.

`Engine.process(raw)` takes most records through the fast decoder (streams/events/fast.py);
`Engine.apply(decode(raw))` always goes through the models. Both must leave the same state
and emit the same records.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from streams.bench.generate import StreamParams, generate
from streams.engine import Engine
from streams.engine.records import format_micros, format_time
from streams.events import Rejection, decode
from streams.events.fast import to_micros

SEED = Path(__file__).resolve().parents[2] / "fixtures" / "scale-ai-2025.ndjson"


def _via_models(engine: Engine, raw: bytes):
    event = decode(raw)
    if isinstance(event, Rejection):
        return engine._reject(event)
    return engine.apply(event)


@pytest.mark.parametrize("source", ["seed", "generated"])
def test_process_and_apply_give_the_same_records_and_state(source):
    lines = (
        SEED.read_bytes().splitlines()
        if source == "seed"
        else list(generate(StreamParams(events=8_000, pairs=400, seed=9)))
    )
    lines += lines[:50]  # duplicates too
    fast, slow = Engine(), Engine()
    for raw in lines:
        a, b = fast.process(raw), _via_models(slow, raw)
        assert [r.to_dict() for r in a.records] == [r.to_dict() for r in b.records], raw
        assert a.rejection == b.rejection, raw
    assert fast.open == slow.open and fast.watermark == slow.watermark
    assert fast.stats == slow.stats and fast.seen == slow.seen
    assert fast.rel.contracts == slow.rel.contracts


@pytest.mark.parametrize(
    "text",
    [
        "2024-03-01T12:00:00Z",
        "2024-03-01T12:00:00.000001Z",
        "2024-03-01T12:00:00.5+02:00",
        "2024-12-31T23:59:59.999999-05:30",
        "1969-12-31T23:59:59.25Z",
        "2000-02-29T00:00:00+23:59",
    ],
)
def test_event_times_format_as_before(text):
    """Records format the watermark-side µs exactly as they formatted the datetime."""
    t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert format_micros(to_micros(t)) == format_time(t)
