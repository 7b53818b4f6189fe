"""The Alertmanager receiver against a real Alertmanager (Debian's prometheus-alertmanager):
a firing record shows up as an active alert, a severity change replaces it, and the resolve
closes it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from alerts.dispatcher import Dispatcher
from alerts.notification_log import InMemoryNotificationLog
from alerts.receivers import AlertmanagerReceiver
from alerts.record import AlertRecord
from alerts.testing import FakeClock, free_port

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


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Alertmanager on a free loopback port, clustering off; its base URL."""
    assert Path(BINARY).exists(), (
        f"{BINARY} missing: apt-get install prometheus-alertmanager (infra/debian-packages.txt)"
    )
    workdir = tmp_path_factory.mktemp("alertmanager")
    (workdir / "alertmanager.yml").write_text(CONFIG)
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
