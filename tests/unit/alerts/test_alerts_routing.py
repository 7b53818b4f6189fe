"""Routing file and environment: first match wins unless continue; no file → every configured
receiver; bad settings fail at start naming the setting; secrets stay out of errors."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from alert_samples import SEED_FIRING, make_record

from alerts.routing import AlertConfigError, AllReceivers, Route, Router, load_config
from alerts.setup import build_channels, build_dispatcher

SLACK_URL = "https://hooks.slack.test/services/T0/B0/SECRETSLACKPATH"
PD_KEY = "PDKEY0123456789SECRET"

ROUTING = """
default_receivers = ["audit"]

[defaults]
give_up_after = 600

[[receivers]]
name = "oncall"
type = "pagerduty"

[[receivers]]
name = "risk-slack"
type = "slack"

[[receivers]]
name = "audit"
type = "console"
mode = "jsonl"

[[routes]]
severity = "critical"
receivers = ["oncall"]
continue = true

[[routes]]
client = ["google", "openai"]
receivers = "risk-slack"

[[routes]]
rival = "meta"
severity = ["high", "warning"]
receivers = ["risk-slack", "audit"]
"""


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    import os

    for var in list(os.environ):
        if var.startswith("STAKEWATCH_"):
            monkeypatch.delenv(var)
    return monkeypatch


def write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> Path:
    path = tmp_path / "alerts.toml"
    path.write_text(text)
    monkeypatch.setenv("STAKEWATCH_ALERTS_CONFIG", str(path))
    monkeypatch.setenv("STAKEWATCH_SLACK_WEBHOOK_URL", SLACK_URL)
    monkeypatch.setenv("STAKEWATCH_PAGERDUTY_ROUTING_KEY", PD_KEY)
    return path


def test_first_match_wins_unless_continue(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    write(tmp_path, clean_env, ROUTING)
    config = load_config()
    router = config.router
    assert isinstance(router, Router)
    route = router.route
    # critical continues into the google route, which stops.
    assert route(make_record(SEED_FIRING)) == ("oncall", "risk-slack")
    # critical for another client: the oncall route continues, then the meta route
    # does not match critical, so only oncall.
    assert route(make_record(SEED_FIRING, client="xai")) == ("oncall",)
    assert route(make_record(SEED_FIRING, client="xai", severity="high")) == (
        "risk-slack",
        "audit",
    )
    # no route matches → default_receivers
    assert route(make_record(SEED_FIRING, client="xai", rival="openai", severity="high")) == (
        "audit",
    )
    assert [s.policy.give_up_after for s in config.receivers] == [600, 600, 600]
    assert config.unused == ()


def test_without_a_routing_file_every_configured_receiver_gets_everything(
    clean_env: pytest.MonkeyPatch,
) -> None:
    clean_env.setenv("STAKEWATCH_SLACK_WEBHOOK_URL", SLACK_URL)
    clean_env.setenv("STAKEWATCH_PAGERDUTY_ROUTING_KEY", PD_KEY)
    clean_env.setenv("STAKEWATCH_PAGERDUTY_URL", "http://127.0.0.1:1/v2/enqueue")
    config = load_config()
    assert config.router == AllReceivers(("slack", "pagerduty"))
    assert config.router.route(make_record(SEED_FIRING)) == ("slack", "pagerduty")
    pd = config.receivers[1]
    assert pd.url is not None and pd.url.get_secret_value() == "http://127.0.0.1:1/v2/enqueue"
    assert pd.rate == (120.0, 60.0) and config.receivers[0].rate == (1.0, 1.0)


def test_nothing_configured_means_no_receivers(clean_env: pytest.MonkeyPatch) -> None:
    assert load_config().receivers == ()


async def test_build_dispatcher_from_environment(clean_env: pytest.MonkeyPatch) -> None:
    from alerts.notification_log import InMemoryNotificationLog

    clean_env.setenv("STAKEWATCH_WEBHOOK_URL", "http://127.0.0.1:1/hook")
    clean_env.setenv("STAKEWATCH_WEBHOOK_SECRET", "s")
    clean_env.setenv("STAKEWATCH_ALERTMANAGER_URL", "http://127.0.0.1:1")
    clean_env.setenv("STAKEWATCH_ALERTS_CONSOLE", "jsonl")
    async with httpx.AsyncClient() as client:
        d = build_dispatcher(client, InMemoryNotificationLog())
        assert d.receivers == ("webhook", "alertmanager", "console")


async def test_receivers_sharing_a_webhook_share_its_rate_limit(
    tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    text = """
[[receivers]]
name = "a"
type = "slack"
[[receivers]]
name = "b"
type = "slack"
[[receivers]]
name = "c"
type = "slack"
url_env = "OTHER_SLACK_URL"
"""
    write(tmp_path, clean_env, text)
    clean_env.setenv("OTHER_SLACK_URL", "https://hooks.slack.test/services/other")
    async with httpx.AsyncClient() as client:
        a, b, c = build_channels(load_config(), client)
    assert a.limiter is b.limiter and a.limiter is not c.limiter


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[[receivers]]\nname="s"\ntype="slack"\n[[routes]]\nreceivers="s"\n'
            '[[routes]]\nseverity="urgent"\nreceivers="s"\n',
            "routes[1].severity: 'urgent' is not one of critical, high, warning",
        ),
        (
            '[[receivers]]\nname="s"\ntype="slack"\n[[routes]]\nseverity=["high","urgent"]\n'
            'receivers="s"\n',
            "routes[0].severity: 'urgent' is not one of critical, high, warning",
        ),
        (
            '[[receivers]]\nname="s"\ntype="teams"\n',
            "receivers[0].type: 'teams' is not one of slack, pagerduty, webhook, alertmanager",
        ),
        (
            '[[receivers]]\nname="s"\ntype="slack"\n[[routes]]\nreceivers=["pager"]\n',
            "routes[0].receivers[0]: unknown receiver 'pager' (defined: s)",
        ),
        (
            '[[receivers]]\nname="s"\ntype="slack"\n[[routes]]\nsevrity="high"\nreceivers="s"\n',
            "routes[0].sevrity: unknown setting",
        ),
        (
            '[[receivers]]\nname="s"\ntype="slack"\n[[routes]]\nclient="Google"\nreceivers="s"\n',
            "routes[0].client: 'Google' is not an entity id",
        ),
        (
            '[[receivers]]\nname="s"\ntype="slack"\n[[receivers]]\nname="s"\ntype="pagerduty"\n',
            "receivers[1].name: 's' is defined twice",
        ),
        (
            '[[receivers]]\nname="s"\ntype="slack"\nmode="jsonl"\n',
            "receivers[0].mode: only for console receivers, not slack",
        ),
        (
            '[[receivers]]\nname="w"\ntype="webhook"\n',
            "receivers[0] (w): STAKEWATCH_WEBHOOK_URL is not set",
        ),
        (
            '[[receivers]]\nname="s"\ntype="slack"\nurl_env="MISSING_VAR"\n',
            "receivers[0] (s): MISSING_VAR is not set",
        ),
        (
            '[[receivers]]\nname="s"\ntype="slack"\n[defaults]\ngive_up_after=-1\n',
            "defaults.give_up_after: Input should be greater than 0",
        ),
        (
            '[[receivers]]\nname="s"\ntype="slack"\n[[routes]]\nreceivers="s"\ncontinue="yes"\n',
            "routes[0].continue: Input should be a valid boolean",
        ),
        ("[[receivers]\n", "invalid TOML"),
        ("", "receivers: required"),
    ],
)
def test_bad_routing_files_fail_naming_the_setting(
    tmp_path: Path, clean_env: pytest.MonkeyPatch, text: str, message: str
) -> None:
    path = write(tmp_path, clean_env, text)
    with pytest.raises(AlertConfigError) as info:
        load_config()
    assert str(info.value).startswith(f"{path}: ")
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("var", "value", "message"),
    [
        ("STAKEWATCH_ALERTS_CONSOLE", "loud", "STAKEWATCH_ALERTS_CONSOLE: 'loud' is not one of"),
        ("STAKEWATCH_PAGERDUTY_URL", "events.pagerduty.com", "STAKEWATCH_PAGERDUTY_URL: not an"),
        (
            "STAKEWATCH_ALERTS_CONFIG",
            "/nonexistent/alerts.toml",
            "STAKEWATCH_ALERTS_CONFIG: cannot",
        ),
    ],
)
def test_bad_environment_fails_naming_the_variable(
    clean_env: pytest.MonkeyPatch, var: str, value: str, message: str
) -> None:
    clean_env.setenv(var, value)
    with pytest.raises(AlertConfigError, match=message):
        load_config()


def test_webhook_needs_its_signing_secret(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("STAKEWATCH_WEBHOOK_URL", "https://example.test/hook")
    with pytest.raises(AlertConfigError, match="STAKEWATCH_WEBHOOK_SECRET: required"):
        load_config()


def test_a_whsec_webhook_secret_that_is_not_base64_fails_naming_it(
    clean_env: pytest.MonkeyPatch, tmp_path
) -> None:
    clean_env.setenv("STAKEWATCH_WEBHOOK_URL", "https://example.test/hook")
    clean_env.setenv("STAKEWATCH_WEBHOOK_SECRET", "whsec_SECRET*NOT*BASE64")
    with pytest.raises(AlertConfigError) as info:
        load_config()
    assert str(info.value).startswith("STAKEWATCH_WEBHOOK_SECRET: starts with whsec_ but")
    assert "SECRET*NOT" not in str(info.value)
    routing = tmp_path / "alerts.toml"
    routing.write_text('[[receivers]]\nname="siem"\ntype="webhook"\nsecret_env="SIEM_SECRET"\n')
    clean_env.setenv("STAKEWATCH_ALERTS_CONFIG", str(routing))
    clean_env.setenv("SIEM_SECRET", "whsec_")
    with pytest.raises(AlertConfigError, match=r"receivers\[0\] \(siem\): SIEM_SECRET: starts"):
        load_config()


def test_a_malformed_secret_url_is_named_but_not_shown(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("STAKEWATCH_SLACK_WEBHOOK_URL", "hooks.slack.test/services/SECRETSLACKPATH")
    with pytest.raises(AlertConfigError) as info:
        load_config()
    assert "STAKEWATCH_SLACK_WEBHOOK_URL: not an http(s) URL" in str(info.value)
    assert "SECRETSLACKPATH" not in str(info.value)
    assert info.value.__cause__ is None and info.value.__context__ is None


def test_secrets_are_not_in_the_config_repr(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    write(tmp_path, clean_env, ROUTING)
    text = repr(load_config())
    assert "SECRETSLACKPATH" not in text and PD_KEY not in text


CLIENT_HOOKS = """
[[receivers]]
name = "risk-slack"
type = "slack"

[[receivers]]
name = "google-hook"
type = "webhook"
url_env = "STAKEWATCH_WEBHOOK_URL_GOOGLE"
secret_env = "STAKEWATCH_WEBHOOK_SECRET_GOOGLE"
clients = ["google"]

[[receivers]]
name = "openai-hook"
type = "webhook"
url_env = "STAKEWATCH_WEBHOOK_URL_OPENAI"
secret_env = "STAKEWATCH_WEBHOOK_SECRET_OPENAI"
clients = ["openai"]
"""


def hooks_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for client in ("GOOGLE", "OPENAI"):
        monkeypatch.setenv(f"STAKEWATCH_WEBHOOK_URL_{client}", f"https://{client}.test/hook")
        monkeypatch.setenv(f"STAKEWATCH_WEBHOOK_SECRET_{client}", f"secret-{client}")


def test_a_clients_receiver_gets_only_its_clients_records_without_routes(
    tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    write(tmp_path, clean_env, CLIENT_HOOKS)
    hooks_env(clean_env)
    route = load_config().router.route
    assert route(make_record(SEED_FIRING)) == ("risk-slack", "google-hook")
    assert route(make_record(SEED_FIRING, client="openai")) == ("risk-slack", "openai-hook")
    assert route(make_record(SEED_FIRING, client="xai")) == ("risk-slack",)


def test_a_route_that_could_send_a_clients_receiver_another_clients_record_fails_at_start(
    tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    hooks_env(clean_env)
    bad = {
        'severity = "critical"\nreceivers = ["google-hook"]': "receivers[0]: 'google-hook'",
        'client = ["google", "openai"]\nreceivers = ["openai-hook"]': "routes[0].receivers[0]",
    }
    for route, message in bad.items():
        write(tmp_path, clean_env, CLIENT_HOOKS + f"\n[[routes]]\n{route}\n")
        with pytest.raises(AlertConfigError, match=re.escape(message)):
            load_config()
    write(tmp_path, clean_env, 'default_receivers = ["openai-hook"]\n' + CLIENT_HOOKS)
    with pytest.raises(AlertConfigError, match=r"default_receivers\[0\]: 'openai-hook' belongs"):
        load_config()
    good = '[[routes]]\nclient = "openai"\nseverity = "critical"\nreceivers = ["openai-hook"]\n'
    write(tmp_path, clean_env, CLIENT_HOOKS + good)
    route = load_config().router.route
    assert route(make_record(SEED_FIRING, client="openai")) == ("openai-hook",)
    assert route(make_record(SEED_FIRING)) == ()


def test_the_router_drops_a_clients_receiver_from_another_clients_record() -> None:
    """The check at start is the first guard; the router is the second, whatever it holds."""
    router = Router(
        (Route(("openai-hook", "risk-slack")),), owners={"openai-hook": frozenset({"openai"})}
    )
    assert router.route(make_record(SEED_FIRING)) == ("risk-slack",)
    assert router.route(make_record(SEED_FIRING, client="openai")) == ("openai-hook", "risk-slack")
