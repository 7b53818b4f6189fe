"""The embedded broker and topic setup, against a real Tansu process."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from streams.kafka.broker import BrokerError, EmbeddedBroker
from streams.kafka.topics import TopicMismatchError, TopicSpec, default_topics, ensure_topics

pytestmark = pytest.mark.integration


async def _consume(bootstrap: str, topic: str, count: int) -> list[tuple[bytes | None, bytes]]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    got: list[tuple[bytes | None, bytes]] = []
    try:
        async with asyncio.timeout(20):
            while len(got) < count:
                batches = await consumer.getmany(timeout_ms=500)
                got += [(r.key, r.value) for rs in batches.values() for r in rs]
    finally:
        await consumer.stop()
    return got


async def test_produce_consume_round_trip(broker: EmbeddedBroker, topic_name: str) -> None:
    """Every keyed record produced to a 3-partition topic is consumed back, once."""
    await ensure_topics(broker.bootstrap, [TopicSpec(topic_name, 3)])
    sent = [(f"k{i % 7}".encode(), f'{{"n":{i}}}'.encode()) for i in range(300)]
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=5)
    await producer.start()
    try:
        for key, value in sent:
            await producer.send(topic_name, value, key=key)
        await producer.flush()
    finally:
        await producer.stop()
    assert sorted(await _consume(broker.bootstrap, topic_name, len(sent))) == sorted(sent)


async def test_ensure_topics_is_idempotent(broker: EmbeddedBroker) -> None:
    """A second call creates nothing and reports every topic as existing."""
    specs = default_topics(prefix="idem")
    names = [s.name for s in specs]
    assert await ensure_topics(broker.bootstrap, specs) == (names, [])
    assert await ensure_topics(broker.bootstrap, specs) == ([], names)


async def test_topics_carry_explicit_retention(broker: EmbeddedBroker) -> None:
    """Retention is set at creation, so DescribeConfigs (which Tansu answers only for
    explicit configs) reports it."""
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    spec = default_topics(prefix="retention")[0]
    await ensure_topics(broker.bootstrap, [spec])
    admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
    await admin.start()
    try:
        (response,) = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, spec.name)]
        )
    finally:
        await admin.close()
    entries = {e[0]: e[1] for e in response.resources[0][4]}
    assert entries == {"retention.ms": "-1", "retention.bytes": "-1"}


async def test_auto_created_topic_with_other_partitions_is_refused(
    broker: EmbeddedBroker, topic_name: str
) -> None:
    """A topic Tansu auto-created on first produce (4 partitions) is not silently accepted."""
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic_name, b"early")
    finally:
        await producer.stop()
    with pytest.raises(TopicMismatchError, match=topic_name):
        await ensure_topics(broker.bootstrap, [TopicSpec(topic_name, 8)])


async def test_produce_during_pause_completes_after_resume(
    broker_factory: Callable[[], EmbeddedBroker],
) -> None:
    """A frozen broker holds a produce; it completes, once, after resume."""
    own = broker_factory()
    await ensure_topics(own.bootstrap, [TopicSpec("paused", 1)])
    producer = AIOKafkaProducer(bootstrap_servers=own.bootstrap, request_timeout_ms=30_000)
    await producer.start()
    try:
        own.pause()
        try:
            pending = asyncio.ensure_future(producer.send_and_wait("paused", b"held"))
            await asyncio.sleep(1.0)
            early = pending.done() and (pending.exception() or pending.result())
            assert not pending.done(), f"produce finished while the broker was frozen: {early!r}"
        finally:
            own.resume()
        metadata = await asyncio.wait_for(pending, 20)
    finally:
        await producer.stop()
    assert metadata.offset == 0
    assert await _consume(own.bootstrap, "paused", 1) == [(None, b"held")]


async def test_restart_keeps_the_address_and_loses_memory(
    broker_factory: Callable[[], EmbeddedBroker],
) -> None:
    """``restart()`` serves on the same port again, with no topics (memory storage)."""
    own = broker_factory()
    address = own.bootstrap
    await ensure_topics(own.bootstrap, [TopicSpec("gone", 1)])
    own.restart()
    assert own.bootstrap == address
    assert await ensure_topics(own.bootstrap, [TopicSpec("gone", 1)]) == (["gone"], [])


def test_start_failure_reports_the_log_tail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the broker binary dies, start() raises with the exit code and its last output."""
    fake = tmp_path / "tansu"
    fake.write_text("#!/bin/sh\necho 'boom: cannot open storage'\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setenv("CALF_TANSU_BIN", os.fspath(fake))
    with pytest.raises(BrokerError, match=r"(?s)exited with code 3.*boom: cannot open storage"):
        EmbeddedBroker(log_dir=tmp_path).start()


def test_start_refuses_a_port_in_use(broker: EmbeddedBroker) -> None:
    """Asking for an address another broker holds fails fast instead of probing the wrong one."""
    with pytest.raises(BrokerError, match="already in use"):
        EmbeddedBroker(broker.bootstrap).start()


def test_context_manager_stops_the_process(tmp_path: Path) -> None:
    """Leaving the ``with`` block terminates the broker process."""
    with EmbeddedBroker(log_dir=tmp_path) as own:
        pid = own.pid
        assert pid is not None
    assert own.pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
