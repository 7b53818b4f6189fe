"""A client's own receiver gets its client's alerts and nobody else's, through the real path:
worker → alerts topic → delivery agent → local HTTP servers, with the seed scenario's four
clients and a routing file that gives Google and OpenAI a webhook each and the risk team a
Slack channel for everything."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from standardwebhooks import Webhook

from alerts.routing import load_config
from alerts.testing import FakeApi
from streams.agents.delivery import DeliveryAgent, DeliveryOptions
from streams.kafka.topics import TopicNames
from tests.integration.workers import publish, running_worker, wait_for

pytestmark = pytest.mark.integration

SEED = Path(__file__).parents[1] / "fixtures" / "scale-ai-2025.ndjson"
ROUTING = """
[defaults]
initial_backoff = 0.2
max_backoff = 1.0

[[receivers]]
name = "risk-slack"
type = "slack"
rate_limit = 50

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

[[routes]]                 # everything to the risk team; critical ones go on
receivers = ["risk-slack"]
continue = true

[[routes]]
client = "google"
receivers = ["google-hook"]

[[routes]]
client = "openai"
receivers = ["openai-hook"]
"""


async def test_each_clients_webhook_gets_only_its_clients_alerts(broker, tmp_path, monkeypatch):
    for var in ("STAKEWATCH_WEBHOOK_URL", "STAKEWATCH_WEBHOOK_SECRET", "STAKEWATCH_ALERTS_CONSOLE"):
        monkeypatch.delenv(var, raising=False)
    names = TopicNames(f"dt{uuid.uuid4().hex[:10]}")
    lines = [line for line in SEED.read_bytes().splitlines() if line.strip()]
    async with (
        FakeApi.slack() as slack,
        FakeApi.webhook() as google,
        FakeApi.webhook() as openai,
    ):
        path = tmp_path / "alerts.toml"
        path.write_text(ROUTING)
        env = {
            "STAKEWATCH_ALERTS_CONFIG": str(path),
            "STAKEWATCH_SLACK_WEBHOOK_URL": slack.url,
            "STAKEWATCH_WEBHOOK_URL_GOOGLE": google.url,
            "STAKEWATCH_WEBHOOK_SECRET_GOOGLE": "google-secret",
            "STAKEWATCH_WEBHOOK_URL_OPENAI": openai.url,
            "STAKEWATCH_WEBHOOK_SECRET_OPENAI": "openai-secret",
        }
        for var, value in env.items():
            monkeypatch.setenv(var, value)
        options = DeliveryOptions(
            broker.bootstrap,
            load_config(),
            names=names,
            group_id=f"{names.prefix}-delivery",
            session_timeout=2.0,
            heartbeat_interval=0.5,
            drain_timeout=2.0,
        )
        agent = DeliveryAgent(options, None)
        await agent.start()
        try:
            async with running_worker(broker.bootstrap, names):
                await publish(broker.bootstrap, names, lines)
                await wait_for(lambda: agent.committed == 6, 30, "six records delivered")
        finally:
            await agent.stop()

    assert len(slack.accepted) == 6  # the risk team sees every client
    for hook, client, secret, expected in (
        (google, "google", b"google-secret", [("firing", "google"), ("resolved", "google")]),
        (openai, "openai", b"openai-secret", [("firing", "openai")]),
    ):
        got = []
        for request in hook.accepted:
            # a secret without whsec_ is the raw key (docs/alerts.md); verify as a receiver does
            record = Webhook(secret).verify(request.body, dict(request.headers))
            got.append((record["status"], record["client"]))
        assert got == expected, client
