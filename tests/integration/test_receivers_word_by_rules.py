"""Receivers word records by the rule set the worker runs with (issue #13, item 6).

`stakewatch worker --config rules.toml` with a threshold of 5 (SPEC: 10), high from a 20 %
stake (SPEC: 25 % or sensitive data) and only `model_weights` sensitive (SPEC: six classes),
delivering through the real broker to local Slack and PagerDuty. Under SPEC's rules the
same records would read "below 10%" where the engine's threshold is 5, and call
`prototypes` sensitive data where the engine found none.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import orjson
import pytest

from alerts.receivers.pagerduty import SEVERITY_MAP
from alerts.testing import FakeApi
from streams.kafka.broker import EmbeddedBroker
from streams.kafka.topics import TopicNames
from tests.integration.workers import WorkerProcess, alert_docs, publish, wait_for

pytestmark = pytest.mark.integration

RULES = """\
[rules]
threshold = 5
sensitive_data_classes = ["model_weights"]
[rules.severity]
critical = ["controlled"]
high = ["stake>=20"]
"""
ROUTING = """\
[[receivers]]
name = "slack"
type = "slack"
rate_limit = 50

[[receivers]]
name = "pagerduty"
type = "pagerduty"
"""
KEY = "google|scale-ai|meta"


def _event(n: int, kind: str, day: int, data: dict) -> bytes:
    return orjson.dumps(
        {
            "specversion": "1.0",
            "id": f"rules-{n:02d}",
            "source": "/test/rules",
            "type": kind,
            "time": f"2025-03-{day:02d}T09:00:00Z",
            "data": data,
        }
    )


def _stake(n: int, day: int, percent: float) -> bytes:
    data = {"owner": "meta", "asset": "scale-ai", "percent": percent, "status": "closed"}
    return _event(n, "ownership.stake", day, data)


EVENTS = [
    _event(1, "rivalry.declared", 1, {"a": "google", "b": "meta", "sector": "frontier-ai"}),
    _event(
        2,
        "contract.signed",
        2,
        {
            "contract_id": "c-rules",
            "client": "google",
            "vendor": "scale-ai",
            "category": "data-labeling",
            "data_classes": ["prototypes"],
            "annual_value": 1_000_000,
        },
    ),
    _stake(3, 3, 7),  # fires: 7 % is at or above 5 (SPEC: nothing below 10)
    _stake(4, 4, 22),  # high: stake>=20
    _stake(5, 5, 7),  # back to warning
    _stake(6, 6, 4),  # resolved: below 5 %
    _stake(7, 7, 8),  # fires again
    _event(8, "contract.terminated", 8, {"contract_id": "c-rules"}),  # resolved: contract
]


def _title_severity(text: str) -> str:
    """The severity a Slack message's first line announces ("resolved" for a resolution)."""
    title = text.splitlines()[0]
    if title.startswith(":white_check_mark:"):
        return "resolved"
    for severity in ("CRITICAL", "HIGH", "WARNING"):
        if f"to {severity} " in title or f"still {severity}" in title or f" {severity}:" in title:
            return severity.lower()
    raise AssertionError(title)


async def test_slack_and_pagerduty_word_records_by_the_workers_rule_set(
    broker: EmbeddedBroker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = TopicNames(f"r{uuid.uuid4().hex[:10]}")
    (tmp_path / "rules.toml").write_text(RULES)
    (tmp_path / "alerts.toml").write_text(ROUTING)
    async with FakeApi.slack() as slack, FakeApi.pagerduty() as pd:
        env = {
            "STAKEWATCH_ALERTS_CONFIG": str(tmp_path / "alerts.toml"),
            "STAKEWATCH_SLACK_WEBHOOK_URL": slack.url,
            "STAKEWATCH_PAGERDUTY_ROUTING_KEY": "R0UT1NGKEY0123456789abcdef012345",
            "STAKEWATCH_PAGERDUTY_URL": pd.url,
        }
        worker = WorkerProcess(
            broker.bootstrap,
            names.prefix,
            tmp_path / "worker.log",
            env=env,
            args=["--config", str(tmp_path / "rules.toml")],
        )
        try:
            await wait_for(worker.status, 30, "the worker up")
            await publish(broker.bootstrap, names, EVENTS)
            await wait_for(
                lambda: len(slack.accepted) == 6 and len(pd.accepted) == 6, 30, "six deliveries"
            )
            assert worker.terminate() == 0
        finally:
            if worker.proc.poll() is None:
                worker.kill()
        records = await alert_docs(broker.bootstrap, names)
        texts = [m["text"] for m in slack.accepted_json()]
        pages = pd.accepted_json()

    # The engine's records under the custom rules: what the receivers must agree with.
    assert [(r["status"], r["severity"], r["stake"]) for r in records] == [
        ("firing", "warning", 7.0),
        ("firing", "high", 22.0),
        ("firing", "warning", 7.0),
        ("resolved", "warning", 4.0),
        ("firing", "warning", 8.0),
        ("resolved", "warning", 8.0),
    ]
    assert {r["dedup_key"] for r in records} == {KEY}

    # Slack: the severity each message announces is the record's, and so is the wording.
    assert [_title_severity(t) for t in texts] == [
        "resolved" if r["status"] == "resolved" else r["severity"] for r in records
    ]
    assert "Escalated to HIGH (was WARNING)" in texts[1]
    assert "Downgraded to WARNING (was HIGH)" in texts[2]
    assert "resolved: meta's stake in scale-ai fell from 7% to 4% (below 5%)" in texts[3]
    assert "resolved: google ended c-rules (no active contract with scale-ai left)" in texts[5]
    assert "below" not in texts[5]  # 8 % is above this threshold: not why it ended
    for text in texts:
        assert "below 10%" not in text
    for text in (texts[0], texts[1], texts[4]):
        assert "Sensitive data: none (other data: prototypes)" in text

    # PagerDuty: the record's severity, mapped; its summary calls no data sensitive.
    triggers = [p for p in pages if p["event_action"] == "trigger"]
    firing = [r for r in records if r["status"] == "firing"]
    assert [p["payload"]["severity"] for p in triggers] == [
        SEVERITY_MAP[r["severity"]] for r in firing
    ]
    assert [p["event_action"] for p in pages] == [
        "trigger" if r["status"] == "firing" else "resolve" for r in records
    ]
    for page in triggers:
        assert "sensitive data" not in page["payload"]["summary"]
        assert page["payload"]["custom_details"]["sensitive_data_classes"] == []
