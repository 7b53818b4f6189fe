"""The stream worker through the real (embedded) broker: seed scenario, equality with
backtest on a generated stream, kill -9 and restart, two workers with one killed, and
dead letters from every input topic."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from streams.bench.generate import StreamParams, generate
from streams.kafka.broker import EmbeddedBroker
from streams.kafka.headers import read_dead_letter
from streams.kafka.topics import TopicNames, default_topics, ensure_topics
from tests.integration.workers import (
    WorkerProcess,
    alert_docs,
    backtest_open,
    open_from_alerts,
    publish,
    read_topic,
    running_worker,
    wait_for,
)

pytestmark = pytest.mark.integration

SEED = Path(__file__).parents[1] / "fixtures" / "scale-ai-2025.ndjson"
GOOGLE = "google|scale-ai|meta"


@pytest.fixture
def names() -> TopicNames:
    return TopicNames(f"w{uuid.uuid4().hex[:10]}")


def seed_lines() -> list[bytes]:
    return [line for line in SEED.read_bytes().splitlines() if line.strip()]


def generated(n: int, seed: int = 3) -> list[bytes]:
    """A generated mixed stream with some garbage and duplicates mixed in."""
    lines = list(generate(StreamParams(events=n, pairs=2_000, labs=12, funds=40, seed=seed)))
    for i in range(0, len(lines), 997):
        lines.insert(i, b'{"specversion": "1.0", "id": ')  # torn record
    for i in range(500, len(lines), 1999):
        lines.insert(i, lines[i - 300])  # a redelivered event: same (source, id)
    return lines


async def test_seed_scenario_alert_within_two_seconds(broker: EmbeddedBroker, names) -> None:
    lines = seed_lines()
    stake = next(i for i, raw in enumerate(lines) if b'"ownership.stake"' in raw)
    async with running_worker(broker.bootstrap, names) as worker:
        await publish(broker.bootstrap, names, lines[:stake])
        await wait_for(lambda: worker.counts["applied"] == stake, 20, "history applied")
        consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap, fetch_max_wait_ms=10)
        await consumer.start()
        tp = TopicPartition(names.alerts, 0)
        consumer.assign([tp])
        await consumer.seek_to_end(tp)
        try:
            produced = time.monotonic()
            await publish(broker.bootstrap, names, lines[stake : stake + 1])
            arrived = None
            while arrived is None and time.monotonic() - produced < 10:
                for record in (await consumer.getmany(tp, timeout_ms=50)).get(tp, []):
                    doc = orjson.loads(record.value)
                    if doc["dedup_key"] == GOOGLE:
                        arrived, fired = time.monotonic(), doc
        finally:
            await consumer.stop()
        assert arrived is not None, "no google|scale-ai|meta alert within 10 s"
        assert arrived - produced < 2.0, f"alert took {arrived - produced:.2f} s"
        assert fired["status"] == "firing" and fired["severity"] == "critical"
        assert fired["stake"] == 49.0 and fired["pending"] is True
        await publish(broker.bootstrap, names, lines[stake + 1 :])
        await wait_for(lambda: worker.counts["applied"] == len(lines), 20, "all applied")
    docs = await alert_docs(broker.bootstrap, names)
    _, expected = backtest_open(lines)
    assert docs == expected  # one worker, live order = file order: record for record
    assert [d["status"] for d in docs if d["dedup_key"] == GOOGLE] == ["firing", "resolved"]


async def test_generated_stream_matches_backtest(broker: EmbeddedBroker, names) -> None:
    lines = generated(20_000)
    expected, _ = backtest_open(lines)
    assert expected, "the generated stream should leave conflicts open"
    await publish(broker.bootstrap, names, lines)  # history first: the merge must order it
    async with running_worker(broker.bootstrap, names) as worker:
        await asyncio.wait_for(worker.ready.wait(), 60)
        assert {k: c.severity for k, c in worker.engine.open.items()} == expected
    assert open_from_alerts(await alert_docs(broker.bootstrap, names)) == expected
    dead = await read_topic(broker.bootstrap, names.dead_letter)
    codes = sorted({read_dead_letter(r.value, r.headers)["code"] for r in dead})
    assert codes == ["duplicate", "invalid_json"]


async def _drive(
    bootstrap: str, names: TopicNames, lines: list[bytes], chunks: int, between
) -> None:
    """Publish in chunks, calling ``between(i)`` after each (where faults are injected)."""
    size = -(-len(lines) // chunks)
    for i, start in enumerate(range(0, len(lines), size)):
        await publish(bootstrap, names, lines[start : start + size])
        await between(i)


async def test_kill_9_and_restart_loses_nothing(
    broker: EmbeddedBroker, names, tmp_path: Path
) -> None:
    lines = generated(20_000, seed=5)
    expected, _ = backtest_open(lines)
    log = tmp_path / "worker.log"
    current = [WorkerProcess(broker.bootstrap, names.prefix, log)]
    restored = []

    async def between(i: int) -> None:
        if i in (1, 3):  # mid-stream, once it has a snapshot to come back to
            await wait_for(lambda: _snapshotted(current[0]), 30, "a snapshot")
            current[0].kill()
            current[0] = WorkerProcess(broker.bootstrap, names.prefix, log)
            status = await wait_for(current[0].status, 30, "restarted worker")
            status = await wait_for(lambda: _assigned(current[0]), 30, "leases after restart")
            restored.append(status["restored"])

    try:
        await _drive(broker.bootstrap, names, lines, 5, between)
        await wait_for(
            lambda: _open_matches(broker.bootstrap, names, expected), 90, "open conflicts"
        )
    finally:
        current[0].terminate()
    docs = await alert_docs(broker.bootstrap, names)
    assert open_from_alerts(docs) == expected
    _assert_no_transition_lost(docs, lines)
    assert len(restored) == 2 and all(restored), "restarts should restore a snapshot"


async def _snapshotted(worker: WorkerProcess) -> bool:
    status = await worker.status()
    return bool(status and status["snapshots"] >= 1 and status["applied"])


async def _assigned(worker: WorkerProcess) -> dict | None:
    status = await worker.status()
    return status if status and status["leases"] else None


async def test_two_workers_survivor_takes_over(
    broker: EmbeddedBroker, names, tmp_path: Path
) -> None:
    lines = generated(20_000, seed=9)
    expected, _ = backtest_open(lines)
    a = WorkerProcess(broker.bootstrap, names.prefix, tmp_path / "a.log")
    b = WorkerProcess(broker.bootstrap, names.prefix, tmp_path / "b.log")

    async def both_hold_leases() -> bool:
        sa, sb = await a.status(), await b.status()
        return bool(sa and sb and sa["leases"] and sb["leases"])

    async def between(i: int) -> None:
        if i == 0:
            await wait_for(both_hold_leases, 60, "both workers holding leases")
        if i == 2:
            await wait_for(lambda: _snapshotted(a), 30, "a snapshot by the worker to kill")
            a.kill()

    try:
        await _drive(broker.bootstrap, names, lines, 5, between)
        await wait_for(lambda: _survivor_has_all(b), 60, "survivor holding every lease")
        assert (await b.status())["restored"], "the survivor restores the dead one's snapshot"
        await wait_for(
            lambda: _open_matches(broker.bootstrap, names, expected), 90, "open conflicts"
        )
    finally:
        a.terminate()
        b.terminate()
    docs = await alert_docs(broker.bootstrap, names)
    assert open_from_alerts(docs) == expected
    _assert_no_transition_lost(docs, lines)


async def _survivor_has_all(worker: WorkerProcess) -> bool:
    status = await worker.status()
    return bool(status and status["leases"] == list(range(8)))


async def _open_matches(bootstrap: str, names: TopicNames, expected: dict) -> bool:
    return open_from_alerts(await alert_docs(bootstrap, names)) == expected


def _assert_no_transition_lost(docs: list[dict], lines: list[bytes]) -> None:
    """Every (dedup_key, status, severity, event) transition of the backtest is on the
    alerts topic at least once, and per conflict the topic never shows one resolved
    before it fired."""
    _, expected = backtest_open(lines)
    seen = {(d["dedup_key"], d["status"], d["severity"], d["event_id"]) for d in docs}
    missing = [
        r
        for r in expected
        if (r["dedup_key"], r["status"], r["severity"], r["event_id"]) not in seen
    ]
    assert not missing, f"{len(missing)} transitions never published, e.g. {missing[:2]}"
    by_key = {}
    for d in docs:
        by_key.setdefault(d["dedup_key"], []).append(d["status"])
    assert all(s[0] == "firing" for s in by_key.values())


async def test_malformed_records_on_every_input_topic_are_dead_lettered(
    broker: EmbeddedBroker, names
) -> None:
    await ensure_topics(broker.bootstrap, default_topics(names.prefix))
    bad = [b"{not json", b'{"specversion":"1.0"}', b"\xff\xfe", b'{"type":"x.y"}' * 5000]
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
    await producer.start()
    try:
        for topic, raw in itertools.product(names.inputs, bad):
            await producer.send_and_wait(topic, raw)
    finally:
        await producer.stop()
    async with running_worker(broker.bootstrap, names) as worker:
        await asyncio.wait_for(worker.ready.wait(), 30)
        await wait_for(lambda: worker.counts["rejected"] == 16, 20, "every record rejected")

        async def all_dead_lettered() -> bool:
            return len(await read_topic(broker.bootstrap, names.dead_letter)) == 16

        await wait_for(all_dead_lettered, 20, "16 records on the dead-letter topic")
    dead = [
        read_dead_letter(r.value, r.headers)
        for r in await read_topic(broker.bootstrap, names.dead_letter)
    ]
    assert len(dead) == 16
    assert {(d["source_topic"], d["original"]) for d in dead} == set(
        itertools.product(names.inputs, bad)
    )
    assert all(d["reason"] and "\n" not in d["reason"] for d in dead)
    assert {d["code"] for d in dead} >= {"invalid_json", "too_large"}


async def test_an_over_allocated_asset_is_applied_logged_and_counted(
    broker: EmbeddedBroker, names
) -> None:
    """Two sources claiming 130 % of scale-ai between them (SPEC v2 §2): both events are
    applied, each holding counts pro rata, the worker logs the asset entering and leaving
    over-allocation and the gauge follows — through the real broker."""
    import structlog
    from prometheus_client import CollectorRegistry

    from streams.metrics import Metrics

    def stake(n: int, owner: str, percent: float, day: int) -> bytes:
        return orjson.dumps(
            {"specversion": "1.0", "id": f"oa-{n}", "source": "/feeds/a", "time":
             f"2025-07-{day:02}T00:00:00Z", "type": "ownership.stake",
             "data": {"owner": owner, "asset": "scale-ai", "percent": percent}}
        )  # fmt: skip

    metrics = Metrics(CollectorRegistry(), process_metrics=False)
    gauge = metrics.overallocated_assets
    with structlog.testing.capture_logs() as logs:
        async with running_worker(broker.bootstrap, names, metrics=metrics) as worker:
            await publish(
                broker.bootstrap, names, [stake(1, "meta", 70, 1), stake(2, "fund", 60, 2)]
            )
            await wait_for(lambda: worker.counts["applied"] == 2, 20, "both stakes applied")
            await wait_for(lambda: gauge._value.get() == 1, 10, "the gauge at 1")
            counted = worker.engine.graph.counted_in("scale-ai")
            assert counted == {"meta": 70 * 100 / 130, "fund": 60 * 100 / 130}
            await publish(broker.bootstrap, names, [stake(3, "fund", 20, 3)])
            await wait_for(lambda: worker.counts["applied"] == 3, 20, "the exit applied")
            await wait_for(lambda: gauge._value.get() == 0, 10, "the gauge back at 0")
    said = [(e["event"], e["asset"], e["claimed_percent"]) for e in logs if "asset" in e]
    assert said == [
        ("asset over-allocated", "scale-ai", 130.0),
        ("asset no longer over-allocated", "scale-ai", 90.0),
    ]
