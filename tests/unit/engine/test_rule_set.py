"""Each rule has one home (streams/engine/rules.py, config.py): these pin what the others
rely on — the fingerprint covers every setting, severities and rejection codes are one list."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from streams.engine import EngineConfig, SeverityRules
from streams.engine.rules import SEVERITIES, SEVERITY_RANK, judged_stake, meets_threshold
from streams.events import RejectionCode

DOCS = Path(__file__).resolve().parents[3] / "docs"

# Another valid value for every setting of EngineConfig. A setting added without a line
# here fails `test_every_setting_moves_the_fingerprint`: say what else it may be.
OTHER_VALUE = {
    "threshold": 12.5,
    "sensitive_data_classes": frozenset({"model_weights"}),
    "severity": SeverityRules.parse({"critical": ["controlled"], "high": ["stake>=30"]}),
    "spend_window_days": 30,
    "path_floor": 0.02,
    "max_path_holdings": 8,
}


def test_every_setting_moves_the_fingerprint() -> None:
    """Changing any one field of EngineConfig changes the digest snapshots are matched by."""
    base = EngineConfig()
    names = {f.name for f in dataclasses.fields(EngineConfig)}
    assert names == set(OTHER_VALUE), "a new rule setting needs an OTHER_VALUE entry"
    for name, value in OTHER_VALUE.items():
        changed = dataclasses.replace(base, **{name: value})
        assert changed.fingerprint() != base.fingerprint(), name


def test_the_fingerprint_is_stable_for_equal_settings() -> None:
    """Equal rule sets (classes given in another order) share one digest, and the default
    rule set keeps the digest earlier snapshots were written with."""
    a = EngineConfig(sensitive_data_classes=frozenset(["b", "a", "c"]))
    b = EngineConfig(sensitive_data_classes=frozenset(["c", "a", "b"]))
    assert a.fingerprint() == b.fingerprint()
    assert EngineConfig().fingerprint() == "e0a4a9d331ddcfe7"


def test_severities_are_ranked_most_urgent_first() -> None:
    assert SEVERITIES == ("critical", "high", "warning")
    assert sorted(SEVERITIES, key=SEVERITY_RANK.__getitem__) == list(SEVERITIES)


def test_the_threshold_reads_the_stake_rounded_to_nine_decimals() -> None:
    """58 % of 50 % is 28.999999999999996 in floats: at a threshold of 29 it counts."""
    stake = 0.58 * 50
    assert stake < 29 and judged_stake(stake) == 29.0
    assert meets_threshold(stake, 29.0) and not meets_threshold(28.99999, 29.0)


def test_rejection_codes_are_the_documented_ones() -> None:
    """docs/decisions.md's "Rejections" table lists exactly the enum, in its order."""
    text = (DOCS / "decisions.md").read_text()
    section = text.split("## Rejections", 1)[1].split("\n## ", 1)[0]
    documented = re.findall(r"^\| `([a-z_]+)` \|", section, flags=re.M)
    assert documented == [code.value for code in RejectionCode]
