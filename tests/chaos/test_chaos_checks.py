"""The campaign's judges, on hand-made deliveries: a check that cannot fail proves nothing,
so each one is shown failing on the fault it exists to catch."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import orjson
import pytest

from alerts.receivers.slack import REPEAT_NOTE
from streams.bench.chaos import (
    BEGIN,
    CI,
    END,
    Expected,
    Result,
    Told,
    Trouble,
    check_receivers,
    check_topic,
    in_doubt_from_logs,
    write_report,
)

K = "a|v|r"
RECORDS = [
    {"dedup_key": K, "status": "firing", "severity": "high", "event_id": "e1"},
    {"dedup_key": K, "status": "resolved", "severity": "high", "event_id": "e2"},
]
EXPECTED = Expected(RECORDS, {10: {}})
FIRED, RESOLVED = Told(K, "firing", "e1"), Told(K, "resolved", "e2")
PD_RESOLVED = Told(K, "resolved", None)


def _judge(told: dict[str, list[Told]], in_doubt: Counter | None = None) -> Result:
    result = Result("test", "test")
    check_receivers(result, EXPECTED, told, in_doubt or Counter())
    return result


def _everyone(slack: list[Told], pd: list[Told] | None = None) -> dict[str, list[Told]]:
    return {
        "slack": slack,
        "pagerduty": pd if pd is not None else [FIRED, PD_RESOLVED],
        "webhook": [FIRED, RESOLVED],
    }


def test_everything_once_in_order_is_clean() -> None:
    result = _judge(_everyone([FIRED, RESOLVED]))
    assert (result.violations, result.lost, result.duplicates) == ([], 0, 0)
    assert result.deliveries == 6


def test_a_lost_state_a_silent_repeat_and_a_resolve_first_are_caught() -> None:
    assert _judge(_everyone([FIRED])).lost == 1
    repeated = _judge(_everyone([FIRED, FIRED, RESOLVED]))
    assert repeated.duplicates == 1 and "without the repeat note" in repeated.violations[0]
    backwards = _judge(_everyone([RESOLVED, FIRED]))
    assert backwards.violations and "backtest order" in backwards.violations[0]
    late = _judge(_everyone([FIRED, RESOLVED, FIRED]))  # not adjacent: not an in-doubt resend
    assert late.duplicates == 1


def test_a_repeat_is_allowed_only_in_doubt_and_on_slack_only_marked() -> None:
    marked = Told(K, "firing", "e1", marked_repeat=True)
    doubt = Counter({("slack", K, "firing", "e1"): 1, ("pagerduty", K, "resolved", None): 1})
    ok = _judge(_everyone([FIRED, marked, RESOLVED], [FIRED, PD_RESOLVED, PD_RESOLVED]), doubt)
    assert (ok.violations, ok.duplicates, ok.in_doubt) == ([], 0, 2)
    unmarked = _judge(_everyone([FIRED, FIRED, RESOLVED]), doubt)
    assert unmarked.duplicates == 1  # Slack must say it may be a repeat
    twice = _judge(_everyone([FIRED, marked, marked, RESOLVED]), doubt)
    assert twice.duplicates == 1  # one in-doubt record, one resend


def test_pagerduty_incidents_follow_the_firing_episodes() -> None:
    result = _judge(_everyone([FIRED, RESOLVED], [FIRED, PD_RESOLVED, FIRED]))
    assert any("incidents" in v for v in result.violations)


def test_the_topic_check_wants_the_backtest_open_set_and_every_transition() -> None:
    clean = Result("t", "t")
    check_topic(clean, EXPECTED, RECORDS)
    assert clean.violations == [] and clean.lost == 0
    short = Result("t", "t")
    check_topic(short, EXPECTED, RECORDS[:1])
    assert short.lost == 1 and len(short.violations) == 2  # still open, and e2 missing
    restarted = Result("t", "t")
    check_topic(restarted, EXPECTED, [RECORDS[1], *RECORDS], continuous=False)
    assert restarted.violations == []


def test_in_doubt_lines_are_read_from_json_worker_logs(tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    lines = [
        {"event": "alert.in_doubt", "receiver": "slack", "dedup_key": K, "status": "firing",
         "severity": "high", "event_id": "e1"},
        {"event": "alert.in_doubt", "receiver": "pagerduty", "dedup_key": K,
         "status": "resolved", "severity": "high", "event_id": "e2"},
        {"event": "alert.delivered", "receiver": "slack", "dedup_key": K},
    ]  # fmt: skip
    log.write_bytes(b"not json\n" + b"\n".join(orjson.dumps(x) for x in lines) + b"\n")
    assert in_doubt_from_logs([log, tmp_path / "missing.log"]) == Counter(
        {("slack", K, "firing", "e1"): 1, ("pagerduty", K, "resolved", None): 1}
    )


def test_the_report_table_is_replaced_between_its_markers(tmp_path: Path) -> None:
    doc = tmp_path / "reliability.md"
    doc.write_text(f"# Reliability\n\nintro\n\n{BEGIN}\nold table\n{END}\n\n## Hostile input\n")
    result = Result("kills", "worker kill -9", injected=5, events=100, recovery=[1.0, 3.0])
    write_report(doc, [result], CI)
    text = doc.read_text()
    assert "old table" not in text and text.count(BEGIN) == 1 and text.count(END) == 1
    assert "| worker kill -9 | 5 | 100 |" in text and "2.0 s / 3.0 s" in text
    assert text.endswith("## Hostile input\n") and "every invariant held" in text
    write_report(doc, [Result("x", "y", lost=1)], CI)
    assert "FAILED: x" in doc.read_text()


@pytest.mark.parametrize(
    ("elapsed", "phase"),
    [(0.0, "outage"), (5.9, "outage"), (6.1, "storm"), (10.1, "slow"), (14.1, "normal")],
)
def test_receiver_trouble_goes_500_then_429_then_slow(
    elapsed: float, phase: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    trouble = Trouble(CI)
    assert trouble.phase() == "normal"
    trouble.begin()
    assert trouble.start is not None
    monkeypatch.setattr("streams.bench.chaos.time.monotonic", lambda: trouble.start + elapsed)
    assert trouble.phase() == phase
    assert REPEAT_NOTE  # the marker the Slack check looks for exists
