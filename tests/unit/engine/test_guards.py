"""One event must not push the watermark years ahead; times must be real instants."""

from __future__ import annotations

import orjson

from streams.engine import Engine, EngineConfig
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


def test_one_event_far_ahead_cannot_expire_everyones_spend() -> None:
    engine = _seeded()
    assert list(engine.open) == ["google|scale-ai|meta"]
    w = engine.watermark
    for etype, data in (
        ("rivalry.declared", {"a": "openai", "b": "xai"}),
        ("spend.recorded", {"client": "openai", "vendor": "scale-ai", "amount": 1.0}),
    ):
        out = engine.process(_ev(4, "2052-01-02T00:00:00Z", etype, data))
        assert out.rejection is not None and out.rejection.code == "future"
        assert "limit 180 days" in out.rejection.detail
        assert engine.watermark == w and not out.records
    assert list(engine.open) == ["google|scale-ai|meta"]
    later = _ev(5, "2025-06-30T00:00:00Z", "rivalry.declared", {"a": "openai", "b": "xai"})
    assert engine.process(later).applied  # 179 days ahead: within the limit


def test_the_guard_is_a_rule_setting() -> None:
    assert EngineConfig.from_mapping({"max_future_days": 30}).max_future_days == 30
    off = Engine(EngineConfig(max_future_days=None))
    off.process(_ev(1, "2025-01-01T00:00:00Z", "rivalry.declared", {"a": "x", "b": "y"}))
    far = _ev(2, "2052-01-01T00:00:00Z", "rivalry.declared", {"a": "x", "b": "z"})
    assert off.process(far).applied


def test_times_outside_1900_to_2200_utc_are_schema_errors() -> None:
    for time in ("9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59", "2500-01-01T00:00:00Z"):
        raw = _ev(1, time, "rivalry.declared", {"a": "x", "b": "y"})
        rejected = decode(raw)
        assert isinstance(rejected, Rejection) and rejected.code == "schema", time
        assert Engine().process(raw).rejection == rejected
    ok = decode(_ev(1, "2199-12-31T12:00:00Z", "rivalry.declared", {"a": "x", "b": "y"}))
    assert not isinstance(ok, Rejection)
