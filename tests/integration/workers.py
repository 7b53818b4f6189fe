"""Helpers for worker tests: publish events, run workers (in process or as processes),
read topics back, and compute what ``stakewatch backtest`` says should be open."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from streams.agents.snapshot_key import SnapshotKey
from streams.agents.worker import Worker, WorkerOptions
from streams.bench.chaos import WorkerProc
from streams.engine import Engine
from streams.events import Rejection, decode
from streams.kafka.partitions import read_to_end
from streams.kafka.replay import event_time_ms
from streams.kafka.topics import TopicNames, default_topics, ensure_topics, route

#: The key test workers sign their snapshots with (``STAKEWATCH_SNAPSHOT_KEY`` for processes).
SNAPSHOT_SECRET = "test-snapshot-key-0123456789abcdef0123456789abcdef"
SNAPSHOT_KEY = SnapshotKey(SNAPSHOT_SECRET.encode())
FAST = {
    "session_timeout": 2.0,
    "heartbeat_interval": 0.5,
    "snapshot_interval": 0.5,
    "snapshot_key": SNAPSHOT_KEY,
}


async def publish(bootstrap: str, names: TopicNames, lines: Iterable[bytes]) -> int:
    """Produce each valid line to its topic (key and event-time timestamp as replay does);
    invalid lines go raw to the ownership topic, as a broken producer would send them,
    stamped with the time of the line before (the worker merges partitions by timestamp)."""
    await ensure_topics(bootstrap, default_topics(names.prefix))
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    sent = 0
    stamp = 0
    try:
        for raw in lines:
            event = decode(raw)
            if isinstance(event, Rejection):
                await producer.send(names.ownership, raw, key=None, timestamp_ms=stamp)
            else:
                topic, key = route(names, event)
                stamp = event_time_ms(event.time)
                await producer.send(topic, raw, key=key, timestamp_ms=stamp)
            sent += 1
        await producer.flush()
    finally:
        await producer.stop()
    return sent


async def read_topic(bootstrap: str, topic: str) -> list:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=50
    )
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        return await read_to_end(consumer, tp)
    finally:
        await consumer.stop()


async def alert_docs(bootstrap: str, names: TopicNames) -> list[dict]:
    return [orjson.loads(r.value) for r in await read_topic(bootstrap, names.alerts)]


def open_from_alerts(docs: Iterable[dict]) -> dict[str, str]:
    """Open conflicts as the alerts topic tells them: the last record per dedup_key."""
    last: dict[str, dict] = {}
    for doc in docs:
        last[doc["dedup_key"]] = doc
    return {k: d["severity"] for k, d in last.items() if d["status"] == "firing"}


def backtest_open(lines: Iterable[bytes]) -> tuple[dict[str, str], list[dict]]:
    engine = Engine()
    records = []
    for raw in lines:
        records.extend(r.to_dict() for r in engine.process(raw).records)
    return {k: c.severity for k, c in engine.open.items()}, records


@contextlib.asynccontextmanager
async def running_worker(
    bootstrap: str, names: TopicNames, metrics=None, **options
) -> AsyncIterator[Worker]:
    worker = Worker(WorkerOptions(bootstrap, names=names, **{**FAST, **options}), metrics)
    await worker.start()
    try:
        yield worker
    finally:
        await worker.stop()


async def wait_for(predicate, seconds: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + seconds
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds} s waiting for {what}")
        await asyncio.sleep(interval)


class WorkerProcess(WorkerProc):
    """``stakewatch worker`` as a child process, for kill -9 tests (the chaos campaign's
    ``WorkerProc``), with the broker and fast-group settings; ``env`` adds variables
    (alert receivers, say) on top."""

    def __init__(
        self,
        bootstrap: str,
        prefix: str,
        log: Path,
        env: dict[str, str] | None = None,
        args: Sequence[str] = (),
    ) -> None:
        env = {
            **os.environ,
            "STAKEWATCH_BROKER": f"kafka://{bootstrap}",
            "STAKEWATCH_TOPIC_PREFIX": prefix,
            "STAKEWATCH_SESSION_TIMEOUT": str(FAST["session_timeout"]),
            "STAKEWATCH_HEARTBEAT_INTERVAL": str(FAST["heartbeat_interval"]),
            "STAKEWATCH_SNAPSHOT_INTERVAL": str(FAST["snapshot_interval"]),
            "STAKEWATCH_SNAPSHOT_KEY": SNAPSHOT_SECRET,
            "STAKEWATCH_LOG_FORMAT": "json",
            "STAKEWATCH_DATA_DIR": str(log.parent / "data"),  # group member slots
            **(env or {}),
        }
        super().__init__(env, log, args)

    async def applied(self) -> int:
        status = await self.status()
        return status["applied"] if status else 0
