"""Times: a typo years ahead is caught against the clock when read, never against the
watermark (SPEC v2 §2: gaps in time are normal); times must be real instants."""

from __future__ import annotations

from datetime import datetime

import orjson
import pytest

from streams.engine import ConfigError, Engine, EngineConfig
from streams.events import Rejection, decode


def _ev(n: int, time: str, etype: str, data: dict) -> bytes:
    return orjson.dumps(
        {"specversion": "1.0", "id": f"g-{n}", "source": "/t", "type": etype, "time": time,
         "data": data}
    )  # fmt: skip


def _seeded() -> Engine:
    engine = Engine()
    for raw in (
        _ev(1, "2025-01-01T00:00:00Z", "rivalry.declared", {"a": "google", "b": "meta"}),
        _ev(2, "2025-01-01T00:00:00Z", "ownership.stake",
            {"owner": "meta", "asset": "scale-ai", "percent": 49}),
        _ev(3, "2025-01-02T00:00:00Z", "spend.recorded",
            {"client": "google", "vendor": "scale-ai", "amount": 100.0}),
    ):  # fmt: skip
        assert engine.process(raw).applied
    return engine


def _micros(time: str) -> int:
    return int(datetime.fromisoformat(time).timestamp() * 1_000_000)


def test_an_event_far_ahead_of_the_clock_cannot_expire_everyones_spend() -> None:
    """A far-future typo is `future` against the reading, changes nothing, moves no W."""
    engine = _seeded()
    assert list(engine.open) == ["google|scale-ai|meta"]
    w = engine.watermark
    read_at = _micros("2025-01-03T00:00:00+00:00")
    for etype, data in (
        ("rivalry.declared", {"a": "openai", "b": "xai"}),
        ("spend.recorded", {"client": "openai", "vendor": "scale-ai", "amount": 1.0}),
    ):
        out = engine.process(_ev(4, "2052-01-02T00:00:00Z", etype, data), now=read_at)
        assert out.rejection is not None and out.rejection.code == "future"
        assert "after the clock when read (limit 1 day)" in out.rejection.detail
        assert engine.watermark == w and not out.records
    assert list(engine.open) == ["google|scale-ai|meta"]


def test_the_limit_is_one_day_after_the_reading() -> None:
    engine = _seeded()
    read_at = _micros("2025-01-03T00:00:00+00:00")
    late = _ev(5, "2025-01-04T00:00:01Z", "rivalry.declared", {"a": "openai", "b": "xai"})
    assert engine.process(late, now=read_at).rejection.code == "future"
    edge = _ev(6, "2025-01-04T00:00:00Z", "rivalry.declared", {"a": "openai", "b": "xai"})
    assert engine.process(edge, now=read_at).applied  # exactly one day ahead: accepted


def test_years_between_events_are_applied() -> None:
    """A register's history — 2019, 2021, 2023 — is applied whole, however far each event
    lies after the watermark, as long as it is not ahead of the clock."""
    engine = Engine()
    read_at = _micros("2026-12-04T00:00:00+00:00")
    for n, year in enumerate((2019, 2021, 2023, 2026)):
        raw = _ev(n, f"{year}-03-01T00:00:00Z", "ownership.stake",
                  {"owner": "meta", "asset": "scale-ai", "percent": 10 + n})  # fmt: skip
        assert engine.process(raw, now=read_at).applied, year
    assert engine.graph.holdings["meta", "scale-ai"].held == 13


def test_the_old_watermark_setting_is_refused_by_name() -> None:
    with pytest.raises(ConfigError, match=r"^max_future_days: no longer a setting"):
        EngineConfig.from_mapping({"max_future_days": 30})


def test_times_outside_1900_to_2200_utc_are_schema_errors() -> None:
    for time in ("9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59", "2500-01-01T00:00:00Z"):
        raw = _ev(1, time, "rivalry.declared", {"a": "x", "b": "y"})
        rejected = decode(raw)
        assert isinstance(rejected, Rejection) and rejected.code == "schema", time
        assert Engine().process(raw).rejection == rejected
    ok = decode(_ev(1, "2199-12-31T12:00:00Z", "rivalry.declared", {"a": "x", "b": "y"}))
    assert not isinstance(ok, Rejection)
