"""Records made by the official CloudEvents SDK, in both content modes, through producers
we did not write, into a real worker: the seed conflicts fire, and the alert records read
back with the SDK's `from_binary`.

The SDK's Kafka binding (`cloudevents.v1.kafka`: `to_binary`, `to_structured`) makes each
record; librdkafka (`confluent-kafka`, with its own default partitioner, which is not
Kafka's murmur2) or aiokafka sends it, keyed as a producer that knows our keys would and
stamped with the event time. The worker must open exactly what `backtest` opens.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from cloudevents.v1.http import CloudEvent
from cloudevents.v1.kafka import KafkaMessage, from_binary, to_binary, to_structured
from confluent_kafka import Producer

from streams.events import decode
from streams.kafka.headers import read_dead_letter
from streams.kafka.replay import event_time_ms
from streams.kafka.topics import TopicNames, default_topics, ensure_topics, route
from tests.integration.workers import (
    backtest_open,
    open_from_alerts,
    read_topic,
    running_worker,
    wait_for,
)

pytestmark = pytest.mark.integration

SEED = Path(__file__).parents[1] / "fixtures" / "scale-ai-2025.ndjson"
LINES = [line for line in SEED.read_bytes().splitlines() if line.strip()]


def sdk_messages(names: TopicNames, mode: str) -> list[tuple[str, KafkaMessage, int]]:
    """(topic, SDK message, event time in ms) for every seed event."""
    convert = to_binary if mode == "binary" else to_structured
    out = []
    for raw in LINES:
        event = decode(raw)
        topic, key = route(names, event)
        doc = orjson.loads(raw)
        data = doc.pop("data")
        message = convert(CloudEvent.create(doc, data), key_mapper=lambda _e, k=key: k)
        out.append((topic, message, event_time_ms(event.time)))
    return out


def produce_librdkafka(bootstrap: str, messages) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for topic, m, stamp in messages:
        producer.produce(topic, m.value, m.key, headers=list(m.headers.items()), timestamp=stamp)
    assert producer.flush(30) == 0


async def produce_aiokafka(bootstrap: str, messages) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    try:
        for topic, m, stamp in messages:
            await producer.send(
                topic, m.value, key=m.key, headers=list(m.headers.items()), timestamp_ms=stamp
            )
        await producer.flush()
    finally:
        await producer.stop()


@pytest.mark.parametrize("mode", ["binary", "structured"])
@pytest.mark.parametrize("client", ["librdkafka", "aiokafka"])
async def test_sdk_records_open_the_seed_conflicts(broker, mode: str, client: str) -> None:
    names = TopicNames(f"ce{uuid.uuid4().hex[:10]}")
    await ensure_topics(broker.bootstrap, default_topics(names.prefix))
    messages = sdk_messages(names, mode)
    expected, records = backtest_open(LINES)
    async with running_worker(broker.bootstrap, names) as worker:
        if client == "librdkafka":
            await asyncio.to_thread(produce_librdkafka, broker.bootstrap, messages)
        else:
            await produce_aiokafka(broker.bootstrap, messages)
        await wait_for(lambda: worker.counts["applied"] == len(LINES), 30, "every event applied")
        assert worker.counts["rejected"] == 0
        alerts = await wait_for(
            lambda: _alerts(broker.bootstrap, names, len(records)), 30, "alert records"
        )
    docs = [orjson.loads(r.value) for r in alerts]
    assert open_from_alerts(docs) == expected != {}
    assert [d["dedup_key"] for d in docs] == [r["dedup_key"] for r in records]
    ids = set()
    for r, doc in zip(alerts, docs, strict=True):
        event = from_binary(KafkaMessage(dict(r.headers), r.key, r.value))
        assert event["type"] == f"io.stakewatch.alert.{doc['status']}"
        assert event["source"] == f"/stakewatch/{names.prefix}"
        assert event["time"] == doc["event_time"]
        assert event["subject"] == doc["dedup_key"]
        assert event.data == doc  # the value is the record, unchanged
        ids.add(event["id"])
    assert len(ids) == len(docs)


async def _alerts(bootstrap: str, names: TopicNames, n: int):
    records = await read_topic(bootstrap, names.alerts)
    return records if len(records) >= n else None


async def test_a_bad_binary_record_is_dead_lettered_with_its_headers(broker) -> None:
    names = TopicNames(f"ce{uuid.uuid4().hex[:10]}")
    await ensure_topics(broker.bootstrap, default_topics(names.prefix))
    doc = orjson.loads(LINES[-1])
    doc["data"]["percent"] = 101
    bad = to_binary(CloudEvent.create({k: v for k, v in doc.items() if k != "data"}, doc["data"]))
    async with running_worker(broker.bootstrap, names) as worker:
        await produce_aiokafka(broker.bootstrap, [(names.ownership, bad, 0)])
        await wait_for(lambda: worker.counts["rejected"] == 1, 30, "the record rejected")
        letters = await wait_for(
            lambda: read_topic(broker.bootstrap, names.dead_letter), 30, "the dead letter"
        )
    (letter,) = letters
    assert letter.value == bad.value  # the original value: the data, not a built event
    headers = dict(letter.headers)
    for name, value in bad.headers.items():
        assert headers[name] == value
    got = read_dead_letter(letter.value, letter.headers)
    assert got["code"] == "schema" and "percent" in got["reason"]
    assert got["source_topic"] == names.ownership
