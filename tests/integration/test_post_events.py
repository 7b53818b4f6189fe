"""``POST /v1/events`` through a real worker and broker: a posted deal opens the seed's
conflicts, and posting it again — at once, or after it was applied — pages nobody twice."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import aiohttp
import orjson
import pytest

from streams.kafka.headers import read_dead_letter
from streams.kafka.topics import TopicNames
from tests.integration.kafka_read import read_topic as read_all
from tests.integration.webapp import serving
from tests.integration.workers import alert_docs, publish, read_topic, running_worker, wait_for

pytestmark = pytest.mark.integration

SEED = Path(__file__).parents[1] / "fixtures" / "scale-ai-2025.ndjson"
TOKEN = "writer-" + uuid.uuid4().hex[:8]
HEADERS = {
    "Authorization": f"Bearer {TOKEN}",
    "Content-Type": "application/cloudevents-batch+json",
}


async def test_posting_a_deal_twice_pages_once(broker) -> None:
    lines = [line for line in SEED.read_bytes().splitlines() if line.strip()]
    stake = next(i for i, raw in enumerate(lines) if b'"ownership.stake"' in raw)
    deal = {**orjson.loads(lines[stake]), "id": "analyst-1", "source": "/analyst"}
    names = TopicNames(f"post{uuid.uuid4().hex[:8]}")
    async with (
        running_worker(broker.bootstrap, names) as worker,
        serving(worker, api_token=TOKEN) as base,
        aiohttp.ClientSession() as http,
    ):
        await publish(broker.bootstrap, names, lines[:stake])
        await wait_for(worker.ready.is_set, 30, "worker caught up")
        body = orjson.dumps([deal])
        first, second = await asyncio.gather(
            http.post(f"{base}/v1/events", data=body, headers=HEADERS),
            http.post(f"{base}/v1/events", data=body, headers=HEADERS),
        )
        answers = [(r.status, await r.json()) for r in (first, second)]
        assert [status for status, _ in answers] == [202, 202]
        await wait_for(lambda: ("/analyst", "analyst-1") in worker.engine.seen, 15, "applied")
        again = await http.post(f"{base}/v1/events", data=body, headers=HEADERS)
        assert (again.status, await again.json()) == (
            202,
            {"accepted": 0, "ids": [], "duplicates": ["analyst-1"]},
        )
        await wait_for(lambda: _alerts(broker.bootstrap, names, 4), 30, "alerts")
        await asyncio.sleep(1.0)  # a second page would have been sent by now
        docs = await alert_docs(broker.bootstrap, names)
        read_only = await http.post(
            f"{base}/v1/events", data=body, headers={**HEADERS, "Authorization": "Bearer nope"}
        )
        assert read_only.status == 401
    keys = [d["dedup_key"] for d in docs]
    assert sorted(keys) == sorted(set(keys)) and "google|scale-ai|meta" in keys  # one each
    assert {d["event_id"] for d in docs} == {"analyst-1"}
    posted = sum(a["accepted"] for _, a in answers)
    if posted == 2:  # both posts raced past the engine: the repeat is a dead-lettered duplicate
        letters = await read_topic(broker.bootstrap, names.dead_letter)
        assert [read_dead_letter(r.value, r.headers)["code"] for r in letters] == ["duplicate"]


async def _alerts(bootstrap: str, names: TopicNames, n: int):
    docs = await alert_docs(bootstrap, names)
    return docs if len(docs) >= n else None


async def test_without_a_write_token_nothing_is_posted(broker) -> None:
    names = TopicNames(f"post{uuid.uuid4().hex[:8]}")
    async with (
        running_worker(broker.bootstrap, names) as worker,
        serving(worker) as base,
        aiohttp.ClientSession() as http,
    ):
        deal = orjson.loads(SEED.read_bytes().splitlines()[73])
        answer = await http.post(
            f"{base}/v1/events",
            data=orjson.dumps(deal),
            headers={"Content-Type": "application/cloudevents+json"},
        )
        assert answer.status == 403
        assert "write rights" in (await answer.json())["error"]
    assert await read_all(broker.bootstrap, names.ownership) == []
