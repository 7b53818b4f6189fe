"""Each receiver speaks its API: what arrives at a local server that answers like the real one."""

from __future__ import annotations

import datetime as dt
import io
import logging
from urllib.parse import quote

import orjson
import pytest
from alert_samples import SEED_FIRING, SEED_RESOLVED, make_record
from pydantic import SecretStr

from alerts.format import format_money, format_path, format_percent, resolution_reason
from alerts.receivers import (
    AlertmanagerReceiver,
    ConsoleReceiver,
    PagerDutyReceiver,
    SlackReceiver,
    WebhookReceiver,
)
from alerts.receivers.base import Scrubber
from alerts.receivers.pagerduty import pagerduty_dedup_key
from alerts.record import OwnershipPath
from alerts.testing import (
    PD_INVALID,
    SLACK_CHANNEL_NOT_FOUND,
    SLACK_INVALID_PAYLOAD,
    Answer,
)
from streams.engine.config import EngineConfig, meets_threshold

FIRING = make_record(SEED_FIRING)
RESOLVED = make_record(SEED_RESOLVED)


# -- wording ------------------------------------------------------------------------------


def test_figures_are_written_for_people() -> None:
    assert format_money(150_000_000) == "$150.0M"
    assert format_money(1_250_000_000) == "$1.2B"
    assert format_money(12_500) == "$12.5K"
    assert format_money(950) == "$950"
    assert format_percent(49.0) == "49%"
    assert format_percent(30.6) == "30.6%"
    assert format_percent(0.0123) == "0.01%"
    assert format_path(OwnershipPath(path=("meta", "scale-ai"), stake=49)) == "meta —49%→ scale-ai"
    chain = OwnershipPath(path=("meta", "holdco", "scale-ai"), stake=30.6)
    assert format_path(chain) == "meta → holdco → scale-ai (30.6% effective)"


def test_resolution_names_the_contract_that_ended() -> None:
    assert resolution_reason(RESOLVED, FIRING) == (
        "resolved: google ended c-google-scale-2024 (no active contract with scale-ai left)"
    )
    assert resolution_reason(RESOLVED) == "resolved: google has no active contract with scale-ai"


def test_resolution_names_a_stake_that_fell_or_a_rivalry_withdrawn() -> None:
    dropped = make_record(SEED_RESOLVED, active_contracts=["c-google-scale-2024"], stake=0.0)
    assert resolution_reason(dropped, FIRING) == (
        "resolved: meta's stake in scale-ai fell from an announced 49% to 0% (below 10%)"
    )
    withdrawn = make_record(SEED_RESOLVED, active_contracts=["c-google-scale-2024"])
    assert resolution_reason(withdrawn, FIRING) == "resolved: google and meta are no longer rivals"


def test_resolution_words_the_stake_by_the_rule_sets_threshold() -> None:
    """The threshold is the rule set's (``EngineConfig.meets_threshold``), not SPEC's 10."""
    strict = EngineConfig(threshold=5.0)
    seven = make_record(SEED_RESOLVED, active_contracts=["c-google-scale-2024"], stake=7.0)
    assert resolution_reason(seven, FIRING, strict) == (
        "resolved: google and meta are no longer rivals"
    )
    assert "below 10%" in resolution_reason(seven, FIRING)
    four = make_record(SEED_RESOLVED, active_contracts=["c-google-scale-2024"], stake=4.0)
    assert resolution_reason(four, FIRING, strict).endswith("to 4% (below 5%)")


def test_a_stake_at_the_threshold_on_paper_meets_it() -> None:
    noisy = 0.58 * 0.5 * 100  # 58 % of 50 %: 28.999999999999996
    assert noisy < 29
    assert meets_threshold(noisy, 29.0)
    assert EngineConfig(threshold=29.0).meets_threshold(noisy)
    assert not meets_threshold(28.99999, 29.0)


# -- Slack --------------------------------------------------------------------------------


async def test_slack_message_tells_a_risk_lead_what_is_at_stake(client, slack_api) -> None:
    slack = SlackReceiver(client, SecretStr(slack_api.url))
    assert (await slack.deliver(FIRING)).ok
    (msg,) = slack_api.accepted_json()
    text = msg["text"]
    for expected in (
        "CRITICAL",
        "google",
        "scale-ai",
        "meta",
        "49%",
        "announced only, pending",
        "meta —49%→ scale-ai",
        "c-google-scale-2024",
        "confidential_data, internal_documents, prototypes",
        "$150.0M",
        "google|scale-ai|meta",
    ):
        assert expected in text, expected
    blocks = msg["blocks"]
    assert blocks[0]["type"] == "header"
    assert len(blocks[0]["text"]["text"]) <= 150
    flat = orjson.dumps(blocks).decode()
    assert "`meta —49%→ scale-ai`" in flat and "$150.0M" in flat


async def test_slack_resolution_refers_to_the_first_message(client, slack_api) -> None:
    slack = SlackReceiver(client, SecretStr(slack_api.url))
    await slack.deliver(FIRING)
    await slack.deliver(make_record(SEED_FIRING, severity="high", event_id="e-2"))
    await slack.deliver(make_record(SEED_RESOLVED, severity="high"))
    first, change, resolved = [m["text"] for m in slack_api.accepted_json()]
    assert "Follow-up" not in first
    assert "Downgraded to HIGH (was CRITICAL)" in change
    reference = "Follow-up to the alert of 2025-06-12 14:00 UTC: “CRITICAL: google's vendor"
    assert reference in change and reference in resolved
    assert "resolved: google ended c-google-scale-2024" in resolved


async def test_slack_errors_are_answers_not_exceptions(client, slack_api) -> None:
    slack = SlackReceiver(client, SecretStr(slack_api.url))
    slack_api.answer_next(SLACK_INVALID_PAYLOAD, SLACK_CHANNEL_NOT_FOUND)
    bad = await slack.deliver(FIRING)
    gone = await slack.deliver(FIRING)
    assert (bad.status, bad.verdict.outcome, bad.detail) == (
        400,
        "permanent",
        "HTTP 400 invalid_payload",
    )
    assert (gone.status, gone.verdict.outcome) == (404, "permanent")
    assert "channel_not_found" in gone.detail


# -- PagerDuty ----------------------------------------------------------------------------


async def test_pagerduty_trigger_and_resolve(client, pd_api) -> None:
    pd = PagerDutyReceiver(client, SecretStr("R0UT1NGKEY"), url=pd_api.url)
    assert (await pd.deliver(FIRING)).status == 202
    assert (await pd.deliver(RESOLVED)).status == 202
    trigger, resolve = pd_api.accepted_json()
    assert trigger["routing_key"] == "R0UT1NGKEY"
    assert trigger["event_action"] == "trigger"
    assert trigger["dedup_key"] == "google|scale-ai|meta"
    payload = trigger["payload"]
    assert payload["severity"] == "critical" and payload["source"] == "stakewatch"
    assert (
        len(payload["summary"]) <= 1024
        and "scale-ai is 49% held by rival meta" in payload["summary"]
    )
    details = payload["custom_details"]
    assert details["ownership_paths"] == ["meta —49%→ scale-ai"]
    assert details["spend_365d"] == "$150.0M" and details["pending"] is True
    assert details["active_contracts"] == ["c-google-scale-2024"]
    assert resolve == {
        "routing_key": "R0UT1NGKEY",
        "event_action": "resolve",
        "dedup_key": "google|scale-ai|meta",
    }


@pytest.mark.parametrize(("ours", "theirs"), [("high", "error"), ("warning", "warning")])
async def test_pagerduty_severity_map(client, pd_api, ours: str, theirs: str) -> None:
    pd = PagerDutyReceiver(client, SecretStr("k"), url=pd_api.url)
    await pd.deliver(make_record(SEED_FIRING, severity=ours))
    assert pd_api.accepted_json()[0]["payload"]["severity"] == theirs


def test_pagerduty_summary_is_cut_and_long_keys_are_shortened_stably() -> None:
    many = [f"c-{i:04d}-{'x' * 40}" for i in range(60)]
    record = make_record(SEED_FIRING, active_contracts=many)
    from alerts.receivers.pagerduty import pd_event

    assert len(pd_event(record, "k")["payload"]["summary"]) == 1024
    long_key = "|".join(["a" * 128, "b" * 128, "c" * 128])
    short = pagerduty_dedup_key(long_key)
    assert len(short) <= 255 and short == pagerduty_dedup_key(long_key)
    assert pagerduty_dedup_key("google|scale-ai|meta") == "google|scale-ai|meta"


async def test_pagerduty_400_is_permanent(client, pd_api) -> None:
    pd = PagerDutyReceiver(client, SecretStr("k"), url=pd_api.url)
    pd_api.answer_next(PD_INVALID)
    delivery = await pd.deliver(FIRING)
    assert delivery.verdict.outcome == "permanent" and "Event object is invalid" in delivery.detail


# -- Alertmanager (payload; the real server is in tests/integration) -----------------------


def test_alertmanager_severity_change_resolves_the_old_label_set(client) -> None:
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    am = AlertmanagerReceiver(client, SecretStr("http://127.0.0.1:9"), now=lambda: now)
    (first,) = am.alerts(FIRING, now)
    assert first["labels"] == {
        "alertname": "StakewatchConflict",
        "dedup_key": "google|scale-ai|meta",
        "client": "google",
        "vendor": "scale-ai",
        "rival": "meta",
        "severity": "critical",
    }
    assert first["annotations"]["path"] == "meta —49%→ scale-ai"
    assert first["startsAt"] == "2025-06-12T14:00:00.000Z"
    assert first["endsAt"] > "2026-12-01"
    am._last["google|scale-ai|meta"] = "critical"
    new, old = am.alerts(make_record(SEED_FIRING, severity="high"), now)
    assert new["labels"]["severity"] == "high" and new["endsAt"] > "2026"
    assert old["labels"]["severity"] == "critical" and old["endsAt"] == "2026-01-01T00:00:00.000Z"


def test_alertmanager_resolve_without_memory_closes_every_severity(client) -> None:
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    am = AlertmanagerReceiver(client, SecretStr("http://127.0.0.1:9"), now=lambda: now)
    alerts = am.alerts(RESOLVED, now)
    assert sorted(a["labels"]["severity"] for a in alerts) == ["critical", "high", "warning"]
    assert {a["endsAt"] for a in alerts} == {"2026-01-01T00:00:00.000Z"}


# -- console ------------------------------------------------------------------------------


async def test_console_shows_who_vendor_rival_path_money_and_data() -> None:
    out = io.StringIO()
    console = ConsoleReceiver(file=out)
    await console.deliver(FIRING)
    await console.deliver(RESOLVED)
    text = out.getvalue()
    for expected in (
        "CRITICAL · google|scale-ai|meta",
        "google (client)",
        "meta — holds 49% of scale-ai",
        "meta —49%→ scale-ai",
        "$150.0M",
        "prototypes",
        "RESOLVED",
        "resolved: google ended c-google-scale-2024",
    ):
        assert expected in text, expected


async def test_console_json_lines_are_spec_records() -> None:
    out = io.StringIO()
    console = ConsoleReceiver(mode="jsonl", file=out)
    await console.deliver(FIRING)
    await console.deliver(RESOLVED)
    lines = out.getvalue().splitlines()
    assert [orjson.loads(line) for line in lines] == [FIRING.to_dict(), RESOLVED.to_dict()]


async def test_answer_body_is_truncated(client, slack_api) -> None:
    slack = SlackReceiver(client, SecretStr(slack_api.url))
    slack_api.answer_next(Answer(400, "x" * 5000))
    delivery = await slack.deliver(FIRING)
    assert len(delivery.detail) < 400


# -- secrets ------------------------------------------------------------------------------


def test_scrubber_removes_secrets_whole_in_parts_and_encoded() -> None:
    url = "https://user:pa55@hooks.slack.test/services/T0/B0/S3CR3T?token=abc123"
    scrub = Scrubber([SecretStr(url), "R0UT1NGKEY", None])
    text = (
        f"failed {url}; path /services/T0/B0/S3CR3T; "
        f"encoded {quote(url, safe='')}; key R0UT1NGKEY; creds user:pa55"
    )
    cleaned = scrub(text)
    for secret in ("S3CR3T", "R0UT1NGKEY", "abc123", "pa55", "%2Fservices"):
        assert secret not in cleaned, secret
    assert "R0UT1NGKEY" not in repr(scrub)


async def test_malformed_url_is_permanent_and_not_quoted(client) -> None:
    url = "http://127.0.0.1:99999999/services/T0/B0/S3CR3T"
    delivery = await SlackReceiver(client, SecretStr(url)).deliver(FIRING)
    assert delivery.verdict.outcome == "permanent"
    assert "S3CR3T" not in delivery.detail and url not in delivery.detail


def test_receivers_do_not_show_secrets_in_repr(client) -> None:
    receivers = [
        SlackReceiver(client, SecretStr("https://hooks.slack.test/services/S3CR3T")),
        PagerDutyReceiver(client, SecretStr("R0UT1NGKEY")),
        WebhookReceiver(client, SecretStr("https://x.test/S3CR3T"), SecretStr("HMACKEY")),
        AlertmanagerReceiver(client, SecretStr("http://u:S3CR3T@am.test:9093")),
    ]
    text = repr(receivers)
    assert "S3CR3T" not in text and "R0UT1NGKEY" not in text and "HMACKEY" not in text


async def test_httpx_request_logs_do_not_show_the_webhook_url(
    client, slack_api, caplog: pytest.LogCaptureFixture
) -> None:
    slack = SlackReceiver(client, SecretStr(slack_api.url))
    with caplog.at_level(logging.INFO, logger="httpx"):
        assert (await slack.deliver(FIRING)).ok
    assert "HTTP Request: POST http://127.0.0.1" in caplog.text
    assert "XXXXSECRETXXXX" not in caplog.text
