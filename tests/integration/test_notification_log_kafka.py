"""The Kafka-backed notification log against the real broker: the store contract of
tests/unit/alerts (imported, so both implementations run the same test), and what the
topic adds: values survive a restart, a new holder catches up with what another wrote,
and junk on the topic is skipped instead of stopping delivery."""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

sys.path.insert(0, str(Path(__file__).parents[1] / "unit" / "alerts"))

from alert_samples import SEED_FIRING, SEED_RESOLVED, make_record
from test_alerts_notification_log import (
    test_store_keeps_values_per_receiver_and_key,
)

from alerts.notification_log import SENDING, NotificationLog, updated
from streams.agents.notification_log import KafkaNotificationLog, encode_value
from streams.kafka.archive import Archive
from streams.kafka.broker import EmbeddedBroker
from streams.kafka.connect import refill
from streams.kafka.topics import TopicNames, default_topics, ensure_topics

pytestmark = pytest.mark.integration

__all__ = ["test_store_keeps_values_per_receiver_and_key"]  # the contract, collected here

FIRING, RESOLVED = make_record(SEED_FIRING), make_record(SEED_RESOLVED)


async def fresh_topic(bootstrap: str) -> str:
    names = TopicNames(f"n{uuid.uuid4().hex[:10]}")
    spec = next(s for s in default_topics(names.prefix) if s.name == names.notifications)
    assert spec.partitions == 1 and spec.config["cleanup.policy"] == "compact"
    await ensure_topics(bootstrap, [spec])
    return names.notifications


@pytest.fixture
async def log_factory(broker: EmbeddedBroker) -> AsyncIterator[Callable[[], NotificationLog]]:
    """The contract's factory: a started log on a topic of its own."""
    log = KafkaNotificationLog(broker.bootstrap, await fresh_topic(broker.bootstrap))
    await log.start()
    try:
        yield lambda: log
    finally:
        await log.stop()


async def test_values_survive_a_restart_and_the_last_one_wins(broker: EmbeddedBroker) -> None:
    topic = await fresh_topic(broker.bootstrap)
    told = updated(None, FIRING, "delivered", told=True)
    intent = updated(told, RESOLVED, SENDING, told=False)
    async with KafkaNotificationLog(broker.bootstrap, topic) as first:
        await first.put("pagerduty", FIRING.dedup_key, told)
        await first.put("slack", FIRING.dedup_key, told)
        await first.put("slack", FIRING.dedup_key, intent)  # killed mid-request after this
    async with KafkaNotificationLog(broker.bootstrap, topic) as second:
        assert await second.get("pagerduty", FIRING.dedup_key) == told
        slack = await second.get("slack", FIRING.dedup_key)
        assert slack == intent and slack.in_doubt(RESOLVED)
        assert len(second) == 2 and second.records_read == 3


async def test_embedded_mode_archives_values_so_a_broker_restart_keeps_them(
    broker_factory: Callable[[], EmbeddedBroker], tmp_path: Path
) -> None:
    """Tansu keeps nothing on disk; without the archive a restarted embedded broker would
    have an empty log, and the rebuild that follows would page for everything again."""
    archive = Archive(tmp_path / "data")
    told = updated(None, FIRING, "delivered", told=True)
    first = broker_factory()
    topic = await fresh_topic(first.bootstrap)
    async with KafkaNotificationLog(first.bootstrap, topic, archive=archive) as log:
        await log.put("pagerduty", FIRING.dedup_key, told)
    first.stop()
    second = broker_factory()
    await refill(second.bootstrap, archive)  # what a fresh embedded broker gets at start
    async with KafkaNotificationLog(second.bootstrap, topic) as log:
        assert await log.get("pagerduty", FIRING.dedup_key) == told


async def test_a_refill_that_lands_an_older_value_after_a_newer_one_does_not_undo_it(
    broker_factory: Callable[[], EmbeddedBroker], tmp_path: Path
) -> None:
    """The broker restarts; a process that has not noticed yet delivers and logs it into the
    successor while the successor is refilled from an archive read before that write. The
    refill's older value then lands after the newer one: the highest sequence must win,
    or the rebuild would page again for what was just delivered."""
    archive = Archive(tmp_path / "data")
    intent = updated(None, FIRING, SENDING, told=False)
    told = updated(intent, FIRING, "delivered", told=True)
    first = broker_factory()
    topic = await fresh_topic(first.bootstrap)
    async with KafkaNotificationLog(first.bootstrap, topic, archive=archive) as log:
        await log.put("slack", FIRING.dedup_key, intent)
        second = broker_factory()
        await fresh_topic(second.bootstrap)
        log.bootstrap = second.bootstrap  # what reconnecting to the same port amounts to
        await log.stop()
        await log.start()
        await log.put("slack", FIRING.dedup_key, told)  # the successor has it first...
    archived = list(archive.read())
    assert [_seq(r.headers) for r in archived] == [1, 2]
    producer = AIOKafkaProducer(bootstrap_servers=second.bootstrap)
    await producer.start()
    try:  # ...then the refill's copy of the intent, read from the archive before the write
        r = archived[0]
        await producer.send_and_wait(
            topic, r.value, key=r.key, partition=0, headers=list(r.headers)
        )
    finally:
        await producer.stop()
    async with KafkaNotificationLog(second.bootstrap, topic) as log:
        assert await log.get("slack", FIRING.dedup_key) == told
        assert log.overtaken == 1
        await log.put("slack", FIRING.dedup_key, told)
    first.stop()


def _seq(headers) -> int:
    return int(dict(headers)["seq"])


async def test_a_new_holder_catches_up_with_what_another_wrote(broker: EmbeddedBroker) -> None:
    topic = await fresh_topic(broker.bootstrap)
    async with (
        KafkaNotificationLog(broker.bootstrap, topic) as standby,
        KafkaNotificationLog(broker.bootstrap, topic) as active,
    ):
        value = None
        for i in range(300):  # more than one fetch batch, written in many produce requests
            value = updated(value, make_record(SEED_FIRING, event_id=f"e{i}"), "delivered", True)
            await active.put("slack", f"c{i % 7}|scale-ai|meta", value)
        assert await standby.get("slack", "c6|scale-ai|meta") is None
        assert await standby.catch_up() == 300
        assert standby.items() == active.items()
        assert await standby.catch_up() == 0  # already at the end


async def test_junk_on_the_topic_is_skipped_not_fatal(broker: EmbeddedBroker) -> None:
    topic = await fresh_topic(broker.bootstrap)
    good = updated(None, FIRING, "delivered", told=True)
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"{not json", key=b"slack|a|b|c", partition=0)
        await producer.send_and_wait(topic, encode_value(good), key=b"no-separator", partition=0)
        await producer.send_and_wait(topic, encode_value(good), key=b"slack|x|y|z", partition=0)
        await producer.send_and_wait(topic, None, key=b"slack|x|y|z", partition=0)  # deleted
        await producer.send_and_wait(topic, encode_value(good), key=b"pd|x|y|z", partition=0)
    finally:
        await producer.stop()
    async with KafkaNotificationLog(broker.bootstrap, topic) as log:
        assert await log.get("slack", "a|b|c") is None  # undecodable: as if never told
        assert await log.get("slack", "x|y|z") is None
        assert await log.get("pd", "x|y|z") == good
        assert log.skipped == 2


async def test_loading_fifty_thousand_values_takes_about_a_second(
    broker: EmbeddedBroker,
) -> None:
    """Tansu never compacts: every put stays on the topic and each start reads them all."""
    topic = await fresh_topic(broker.bootstrap)
    value = None
    for i in range(32):  # a full handled list: the largest value there is (~1.3 KB)
        value = updated(value, make_record(SEED_FIRING, event_id=f"e{i}"), "delivered", True)
    assert value is not None
    raw = encode_value(value)
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=5)
    await producer.start()
    try:
        for i in range(50_000):
            await producer.send(topic, raw, key=f"slack|c{i % 5000}|v|r".encode(), partition=0)
        await producer.flush()
    finally:
        await producer.stop()
    started = time.monotonic()
    async with KafkaNotificationLog(broker.bootstrap, topic) as log:
        seconds = time.monotonic() - started
        assert log.records_read == 50_000 and len(log) == 5000
        assert await log.get("slack", "c4999|v|r") == value
    assert seconds < 5, f"loading 50k values took {seconds:.2f} s"
