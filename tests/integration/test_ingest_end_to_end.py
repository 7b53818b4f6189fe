"""The three ways in, together, end to end through the broker: a BODS register
(`stakewatch import bods --publish`), a procurement export (`stakewatch import csv
contracts --publish`) and a deal typed in (`POST /v1/events`) open OpenAI's conflict with
Meta over Scale AI, which reaches a local webhook receiver.

No source opens it alone (tests/fixtures/ingest/README.md): the register gives Meta 6 %
of Scale AI through a holding company, the export gives OpenAI its contract, the deal adds
5 % — 11 % in all. The importers run as the `stakewatch` command a person types, and land
the register's records on the entities already registered on the reference topic by
their company number and LEI.
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from pathlib import Path

import aiohttp
import orjson
import pytest

from alerts.routing import load_config
from alerts.testing import FakeApi
from streams.agents.delivery import DeliveryAgent, DeliveryOptions
from streams.kafka.topics import TopicNames, default_topics, ensure_topics
from tests.integration.webapp import serving
from tests.integration.workers import publish, running_worker, wait_for

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).parents[1] / "fixtures"
INGEST = FIXTURES / "ingest"
TOKEN = "analyst-" + uuid.uuid4().hex[:8]
CONFLICT = "openai|scale-ai|meta"


async def stakewatch(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "streams",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode, out.decode(), err.decode()


async def test_register_export_and_deal_together_open_the_conflict_and_page(
    broker, monkeypatch, tmp_path
) -> None:
    names = TopicNames(f"e2e{uuid.uuid4().hex[:8]}")
    await ensure_topics(broker.bootstrap, default_topics(names.prefix))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("STAKEWATCH_")},
        "STAKEWATCH_BROKER": broker.url,
        "STAKEWATCH_TOPIC_PREFIX": names.prefix,
    }
    async with FakeApi.webhook() as hook:
        for var in ("STAKEWATCH_ALERTS_CONFIG", "STAKEWATCH_SLACK_WEBHOOK_URL"):
            monkeypatch.delenv(var, raising=False)
        monkeypatch.setenv("STAKEWATCH_WEBHOOK_URL", hook.url)
        monkeypatch.setenv("STAKEWATCH_WEBHOOK_SECRET", "e2e-" + uuid.uuid4().hex)
        delivery = DeliveryAgent(
            DeliveryOptions(
                broker.bootstrap,
                load_config(),
                names=names,
                group_id=f"{names.prefix}-delivery",
                session_timeout=2.0,
                heartbeat_interval=0.5,
                drain_timeout=2.0,
            )
        )
        async with (
            running_worker(broker.bootstrap, names) as worker,
            serving(worker, api_token=TOKEN) as base,
            aiohttp.ClientSession() as http,
        ):
            await delivery.start()
            try:
                # what the deployment knew already: names, identifiers, the rivalry
                await publish(
                    broker.bootstrap, names, (INGEST / "reference.ndjson").read_bytes().splitlines()
                )
                await wait_for(lambda: "openai" in worker.engine.rivals, 30, "reference applied")

                code, _, err = await stakewatch(
                    env, "import", "bods", str(INGEST / "register.json"), "--publish"
                )
                assert code == 0, err
                assert "3 entities were known from the reference topic" in err
                assert "no event: 2 (matched 2)" in err

                contracts = [
                    "import",
                    "csv",
                    "contracts",
                    str(FIXTURES / "csv" / "contracts.csv"),
                    "--map",
                    "Contract No=contract_id,Buyer=client,Supplier=vendor,Category=category,"
                    "Data Shared=data_classes,Annual Value=annual_value,Currency=currency,"
                    "Award Date=time,End Date=ends_on",
                    "--rates",
                    str(FIXTURES / "csv" / "rates.toml"),
                    "--publish",
                ]
                code, _, err = await stakewatch(env, *contracts)
                assert code == 0, err
                await wait_for(
                    lambda: "C-2025-001" in worker.engine.rel.contracts, 30, "contracts applied"
                )
                assert worker.engine.exposure_of("meta").stake("scale-ai") == pytest.approx(6)
                assert CONFLICT not in worker.engine.open  # not yet: 6 % < 10 %

                answer = await http.post(
                    f"{base}/v1/events",
                    data=(INGEST / "deal.json").read_bytes(),
                    headers={
                        "Authorization": f"Bearer {TOKEN}",
                        "Content-Type": "application/cloudevents+json",
                    },
                )
                assert answer.status == 202, await answer.text()

                pages = await wait_for(
                    lambda: [p for p in hook.accepted_json() if p["dedup_key"] == CONFLICT],
                    30,
                    "the webhook paged",
                )
                entity = await (
                    await http.get(
                        f"{base}/v1/entities/scale-ai",
                        headers={"Authorization": f"Bearer {TOKEN}"},
                    )
                ).json()
            finally:
                await delivery.stop()
    (page,) = pages
    assert (page["status"], page["severity"]) == ("firing", "high")
    assert page["stake"] == pytest.approx(11)
    assert page["event_id"] == "analyst-2025-06-12-1"
    paths = {tuple(p["path"]): p["stake"] for p in page["paths"]}
    holdco = next(p[1] for p in paths if len(p) == 3)
    assert paths == {("meta", "scale-ai"): 5, ("meta", holdco, "scale-ai"): pytest.approx(6)}
    assert holdco.startswith("labelling-holdings-")
    assert page["active_contracts"] == ["C-2025-001"]
    assert entity["identifiers"] == [{"scheme": "GB-COH", "id": "12345678"}]
    assert entity["name"] == "Scale AI"  # the known registration stands
    assert orjson.loads((INGEST / "deal.json").read_bytes())["data"]["percent"] == 5
