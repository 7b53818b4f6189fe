"""The engine on the seed case, snapshots, and the rule-set configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.bench.generate import StreamParams, generate
from streams.engine import ConfigError, Engine, EngineConfig, load_config

SEED = Path(__file__).resolve().parents[2] / "fixtures" / "scale-ai-2025.ndjson"


def _run(engine: Engine, lines) -> list[dict]:
    out = []
    for raw in lines:
        out.extend(r.to_dict() for r in engine.process(raw).records)
    return out


def test_seed_case_fires_critical_on_the_announcement_and_resolves_on_termination():
    """SPEC §4: the announced 49 % opens google|scale-ai|meta critical and pending;
    Google's termination resolves it."""
    records = _run(Engine(), SEED.read_bytes().splitlines())
    google = [r for r in records if r["dedup_key"] == "google|scale-ai|meta"]
    assert [(r["status"], r["severity"], r["event_id"]) for r in google] == [
        ("firing", "critical", "seed-0074"),
        ("resolved", "critical", "seed-0075"),
    ]
    firing = google[0]
    assert firing["stake"] == 49 and firing["pending"] is True and firing["controlled"] is False
    assert firing["paths"] == [{"path": ["meta", "scale-ai"], "stake": 49.0}]
    assert firing["active_contracts"] == ["c-google-scale-2024"]
    assert firing["spend_365d"] == 150_000_000


def test_replaying_twice_gives_the_same_records_in_the_same_order():
    """Determinism: two engines fed the same stream emit identical records."""
    lines = list(generate(StreamParams(events=5_000, pairs=500, seed=3)))
    assert _run(Engine(), lines) == _run(Engine(), lines)


def test_snapshot_restore_continues_exactly_like_the_original():
    """A restored snapshot emits what the original engine would have emitted next."""
    lines = list(generate(StreamParams(events=6_000, pairs=500, seed=5)))
    original = Engine()
    _run(original, lines[:3_000])
    restored = Engine.restore(original.snapshot())
    assert _run(restored, lines[3_000:]) == _run(original, lines[3_000:])
    assert restored.open == original.open


def test_duplicate_and_state_rejections_leave_the_watermark_alone():
    """A repeated (source, id) is rejected as duplicate and does not move the watermark."""
    engine = Engine()
    first = SEED.read_bytes().splitlines()[0]
    assert engine.process(first).applied
    w = engine.watermark
    again = engine.process(first)
    assert again.rejection is not None and again.rejection.code == "duplicate"
    assert engine.watermark == w


def test_a_stricter_threshold_from_toml_suppresses_the_conflict(tmp_path):
    """`threshold = 50` in the rules file means a 49 % stake opens nothing."""
    cfg = tmp_path / "rules.toml"
    cfg.write_text("[rules]\nthreshold = 50\n")
    assert _run(Engine(load_config(cfg)), SEED.read_bytes().splitlines()) == []


def test_severity_rules_are_configurable():
    """Making `sensitive` alone critical turns microsoft's no-data conflict from high to... high,
    and a rule set without stake>=25 downgrades it to warning."""
    cfg = EngineConfig.from_mapping(
        {"severity": {"critical": ["controlled"], "high": ["sensitive"]}}
    )
    records = _run(Engine(cfg), SEED.read_bytes().splitlines())
    sev = {r["dedup_key"]: r["severity"] for r in records if r["status"] == "firing"}
    assert sev["microsoft|scale-ai|meta"] == "warning"
    assert sev["google|scale-ai|meta"] == "high"


@pytest.mark.parametrize(
    ("doc", "setting"),
    [
        ({"threshold": 0}, "threshold"),
        ({"threshold": "ten"}, "threshold"),
        ({"thresold": 5}, "thresold"),
        ({"severity": {"critical": ["stake>>25"]}}, "severity.critical[0]"),
        ({"severity": {"urgent": ["controlled"]}}, "severity.urgent"),
        ({"sensitive_data_classes": "prototypes"}, "sensitive_data_classes"),
        ({"spend_window_days": 0}, "spend_window_days"),
    ],
)
def test_bad_rule_settings_fail_naming_the_setting(doc, setting):
    """Every bad setting raises ConfigError whose message starts with the setting's name."""
    with pytest.raises(ConfigError) as info:
        EngineConfig.from_mapping(doc)
    assert str(info.value).startswith(setting)


def test_bad_toml_file_names_the_rules_table(tmp_path):
    """Errors inside a `[rules]` table are reported as rules.<setting>."""
    cfg = tmp_path / "rules.toml"
    cfg.write_text("[rules]\nthreshold = 200\n")
    with pytest.raises(ConfigError, match=r"^rules\.threshold"):
        load_config(cfg)
