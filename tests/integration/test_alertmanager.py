"""The Alertmanager receiver against a real Alertmanager (Debian's prometheus-alertmanager):
a firing record shows up as an active alert, a severity change replaces it, and the resolve
closes it. And the compose stack's wiring with the real binaries: Prometheus with the stack's
`alerting:` block and rules sends a firing operations alert to an Alertmanager running the
stack's configuration (infra/alertmanager/config.sh), which tells local Slack and PagerDuty
servers."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from aiohttp import web
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from alerts.dispatcher import Dispatcher
from alerts.notification_log import InMemoryNotificationLog
from alerts.receivers import AlertmanagerReceiver
from alerts.record import AlertRecord
from alerts.testing import FakeApi, FakeClock, free_port
from streams.metrics import Metrics
from tests.integration.workers import wait_for
from tests.observability import PROM, ROOT, running_prometheus

pytestmark = pytest.mark.integration

BINARY = os.environ.get("STAKEWATCH_ALERTMANAGER_BINARY", "/usr/bin/prometheus-alertmanager")
CONFIG = """
route:
  receiver: blackhole
  group_by: [dedup_key]
  group_wait: 1s
receivers:
  - name: blackhole
"""
KEY = "google|scale-ai|meta"

FIRING: dict[str, Any] = {
    "dedup_key": KEY,
    "status": "firing",
    "severity": "high",
    "client": "google",
    "vendor": "scale-ai",
    "rival": "meta",
    "stake": 49.0,
    "controlled": False,
    "pending": True,
    "paths": [{"path": ["meta", "scale-ai"], "stake": 49.0}],
    "active_contracts": ["c-google-scale-2024"],
    "data_classes": ["confidential_data", "prototypes"],
    "spend_365d": 150000000.0,
    "event_id": "seed-0074",
    "event_time": "2025-06-12T14:00:00Z",
}


@contextlib.contextmanager
def running_alertmanager(workdir: Path, config: str) -> Iterator[str]:
    """A real Alertmanager with `config` on a free loopback port, clustering off; its URL."""
    assert Path(BINARY).exists(), (
        f"{BINARY} missing: apt-get install prometheus-alertmanager (infra/debian-packages.txt)"
    )
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "alertmanager.yml").write_text(config)
    port = free_port()
    log = (workdir / "alertmanager.log").open("wb")
    proc = subprocess.Popen(
        [
            BINARY,
            f"--config.file={workdir / 'alertmanager.yml'}",
            f"--storage.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, (workdir / "alertmanager.log").read_text()
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "Alertmanager did not become ready in 30 s"
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_alertmanager(tmp_path_factory.mktemp("alertmanager"), CONFIG) as url:
        yield url


async def active_alerts(client: httpx.AsyncClient, url: str) -> list[dict[str, Any]]:
    response = await client.get(f"{url}/api/v2/alerts", params={"filter": f'dedup_key="{KEY}"'})
    response.raise_for_status()
    return response.json()


async def test_alert_fires_changes_severity_and_resolves(alertmanager: str) -> None:
    clock = FakeClock()
    async with httpx.AsyncClient(timeout=5) as client:
        receiver = AlertmanagerReceiver(client, SecretStr(alertmanager))
        dispatcher = Dispatcher(
            [receiver], None, InMemoryNotificationLog(), sleep=clock.sleep, clock=clock
        )

        await dispatcher.submit(AlertRecord.model_validate(FIRING))
        await dispatcher.join()
        (alert,) = await active_alerts(client, alertmanager)
        assert alert["labels"] == {
            "alertname": "StakewatchConflict",
            "dedup_key": KEY,
            "client": "google",
            "vendor": "scale-ai",
            "rival": "meta",
            "severity": "high",
        }
        assert alert["annotations"]["path"] == "meta —49%→ scale-ai"
        assert "scale-ai is 49% held by rival meta" in alert["annotations"]["summary"]
        assert alert["startsAt"].startswith("2025-06-12T14:00:00")
        assert alert["endsAt"] > "2026"  # stays active: nobody re-sends it

        escalated = {**FIRING, "severity": "critical", "event_id": "seed-0080"}
        await dispatcher.submit(AlertRecord.model_validate(escalated))
        await dispatcher.join()
        alerts = await active_alerts(client, alertmanager)
        assert [a["labels"]["severity"] for a in alerts] == ["critical"]

        resolved = {
            **escalated,
            "status": "resolved",
            "active_contracts": [],
            "data_classes": [],
            "event_id": "seed-0081",
            "event_time": "2025-06-13T16:00:00Z",
        }
        await dispatcher.submit(AlertRecord.model_validate(resolved))
        await dispatcher.join()
        # Resolved alerts (endsAt in the past) are no longer listed by the API.
        for _ in range(20):
            if not await active_alerts(client, alertmanager):
                break
            await asyncio.sleep(0.1)
        assert await active_alerts(client, alertmanager) == []
        await dispatcher.aclose()


async def test_a_restarted_worker_resolves_every_severity(alertmanager: str) -> None:
    """Without memory of the last severity (restart), a resolve closes all label sets."""
    record = {**FIRING, "client": "openai", "dedup_key": "openai|scale-ai|meta"}
    async with httpx.AsyncClient(timeout=5) as client:
        before = AlertmanagerReceiver(client, SecretStr(alertmanager))
        assert (await before.deliver(AlertRecord.model_validate(record))).ok
        after_restart = AlertmanagerReceiver(client, SecretStr(alertmanager))
        resolved = {**record, "status": "resolved", "severity": "critical", "event_id": "x-2"}
        assert (await after_restart.deliver(AlertRecord.model_validate(resolved))).ok
        response = await client.get(
            f"{alertmanager}/api/v2/alerts", params={"filter": 'dedup_key="openai|scale-ai|meta"'}
        )
        assert response.json() == []


async def test_the_stacks_prometheus_and_alertmanager_tell_slack_and_page_on_a_failed_delivery(
    tmp_path: Path,
) -> None:
    """A receiver refusing alert records for good (StakewatchDeliveryFailures, critical) on a
    worker's /metrics: Prometheus, with the stack's rules and its `alerting:` block (only the
    addresses and intervals changed for this host), fires it to Alertmanager, configured by
    the stack's config.sh from the receiver variables, which posts to Slack and pages."""
    metrics = Metrics(CollectorRegistry())
    failed = metrics.deliveries.labels("pagerduty", "failed")  # 0 now: the baseline sample
    app = web.Application()
    app.router.add_get("/metrics", metrics.aiohttp_handler())
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    worker = f"127.0.0.1:{runner.addresses[0][1]}"
    try:
        async with FakeApi.slack() as slack, FakeApi.pagerduty() as pd:
            rendered = await asyncio.to_thread(
                subprocess.run,
                ["sh", str(ROOT / "infra" / "alertmanager" / "config.sh")],
                capture_output=True,
                text=True,
                check=True,
                env={
                    "PATH": "/usr/bin:/bin",
                    "STAKEWATCH_SLACK_WEBHOOK_URL": slack.url,
                    "STAKEWATCH_PAGERDUTY_ROUTING_KEY": "R0UT1NGKEY",
                    "STAKEWATCH_PAGERDUTY_URL": pd.url,
                    "ALERTMANAGER_GROUP_WAIT": "1s",
                },
            )
            with running_alertmanager(tmp_path / "am", rendered.stdout) as am_url:
                stack = yaml.safe_load((PROM / "prometheus.yml").read_text())
                stack["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
                stack["rule_files"] = [str(PROM / "rules" / "*.yml")]
                stack["scrape_configs"][0]["scrape_interval"] = "1s"
                stack["scrape_configs"][0]["static_configs"] = [{"targets": [worker]}]
                (am,) = stack["alerting"]["alertmanagers"]
                assert am["static_configs"] == [{"targets": ["alertmanager:9093"]}]
                am["static_configs"] = [{"targets": [am_url.removeprefix("http://")]}]
                async with running_prometheus(tmp_path, config=stack) as prom:
                    await wait_for(
                        lambda: prom.query('up{job="stakewatch"} == 1'), 30, "first scrape"
                    )
                    failed.inc()  # one record refused for good

                    def told() -> bool:
                        return bool(pd.accepted) and bool(slack.accepted)

                    await wait_for(told, 60, "Slack told and PagerDuty paged")
        page = pd.accepted_json()[0]
        assert page["event_action"] == "trigger" and page["routing_key"] == "R0UT1NGKEY"
        assert "StakewatchDeliveryFailures" in str(page)
        assert "StakewatchDeliveryFailures" in slack.accepted[0].body.decode()
    finally:
        await runner.cleanup()
