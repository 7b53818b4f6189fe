"""Nothing on the snapshots topic runs code (issue #13, item 4), through the real broker.

A snapshot is a pickle, and a pickle can run anything when it is loaded: these tests put
one on ``<p>.snapshots`` whose loading would create a file, named by markers that a worker
would pick, and check that the worker never decodes it (the file is never made), says so in
one log line, and recovers: by replay when there is no other snapshot, from the older
genuine one when there is.
"""

from __future__ import annotations

import asyncio
import pickle
import uuid
from pathlib import Path

import pytest
import structlog

from streams.agents.checkpoints import snapshot_rules
from streams.agents.snapshots import Marker, SnapshotStore
from streams.engine import EngineConfig
from streams.kafka.broker import EmbeddedBroker
from streams.kafka.clients import make_producer
from streams.kafka.topics import TopicNames
from tests.integration.workers import (
    SNAPSHOT_KEY,
    WorkerProcess,
    backtest_open,
    publish,
    read_topic,
    running_worker,
    wait_for,
)

pytestmark = pytest.mark.integration

SEED = Path(__file__).parents[1] / "fixtures" / "scale-ai-2025.ndjson"


class _Touch:
    """Unpickling this creates ``path``: the stand-in for any code an attacker would run."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


def _lines() -> list[bytes]:
    return [line for line in SEED.read_bytes().splitlines() if line.strip()]


@pytest.fixture
def names() -> TopicNames:
    return TopicNames(f"f{uuid.uuid4().hex[:10]}")


def test_the_forged_pickle_would_run_if_it_were_loaded(tmp_path: Path) -> None:
    """The payload is a real threat: loading it makes the file."""
    path = tmp_path / "ran"
    pickle.loads(pickle.dumps(_Touch(path)))
    assert path.exists()


async def _forge(bootstrap: str, names: TopicNames, payload: bytes, markers: list) -> list[int]:
    """The evil chunk, then markers naming it (``(value_of(chunk_offset), headers)``), all
    on partition 0 as the worker writes; returns the markers' offsets."""
    producer = make_producer(bootstrap)
    await producer.start()
    try:
        chunk = (await producer.send_and_wait(names.snapshots, payload, partition=0)).offset
        offsets = []
        for value_of, headers in markers:
            meta = await producer.send_and_wait(
                names.snapshots, value_of(chunk), partition=0, headers=headers
            )
            offsets.append(meta.offset)
        return offsets
    finally:
        await producer.stop()


def _marker(chunk: int, blob_mac: str = "") -> bytes:
    """A marker a worker under the default rules would choose for every lease."""
    return Marker(
        offset=-1,
        snapshot_id=f"evil:{chunk}",
        worker="evil",
        chunks=(chunk,),
        positions={},
        leases=frozenset(range(8)),
        created=0.0,
        rules=snapshot_rules(EngineConfig()),
        blob_mac=blob_mac,
    ).to_json()


async def _start_and_catch_up(bootstrap: str, names: TopicNames) -> tuple[dict, list[dict]]:
    with structlog.testing.capture_logs() as logs:
        async with running_worker(bootstrap, names) as worker:
            await asyncio.wait_for(worker.ready.wait(), 30)
            state = {"restored": worker.restored, "open": dict(worker.engine.open)}
    return state, logs


def _verification_lines(logs: list[dict]) -> list[dict]:
    return [e for e in logs if "verification" in e["event"]]


async def test_forged_markers_without_a_valid_mac_are_never_decoded_and_the_worker_replays(
    broker: EmbeddedBroker, names: TopicNames, tmp_path: Path
) -> None:
    seed = _lines()
    expected, _ = backtest_open(seed)
    await publish(broker.bootstrap, names, seed)
    ran = tmp_path / "ran"
    await _forge(
        broker.bootstrap,
        names,
        pickle.dumps(_Touch(ran)),
        [
            (_marker, [("kind", b"marker")]),  # unsigned
            (_marker, [("kind", b"marker"), ("mac", b"0" * 64)]),  # a made-up MAC
            (_marker, [("kind", b"marker"), ("mac", SNAPSHOT_KEY.sign_marker(b"{}"))]),
        ],
    )
    state, logs = await _start_and_catch_up(broker.bootstrap, names)
    assert not ran.exists(), "a forged snapshot ran code"
    (line,) = _verification_lines(logs)
    assert line["count"] == 3 and line["log_level"] == "warning"
    assert state["restored"] is None  # no genuine snapshot: replayed from the start
    assert set(state["open"]) == set(expected)


async def test_a_signed_marker_naming_forged_chunks_is_refused_and_an_older_snapshot_used(
    broker: EmbeddedBroker, names: TopicNames, tmp_path: Path
) -> None:
    """The marker verifies (as one replayed from elsewhere, or signed by a key holder gone
    rogue would), but the bytes it names do not: they are never unpickled."""
    seed = _lines()
    expected, _ = backtest_open(seed)
    await publish(broker.bootstrap, names, seed)
    first, _ = await _start_and_catch_up(broker.bootstrap, names)  # writes genuine snapshots
    store = SnapshotStore(broker.bootstrap, names.snapshots, "reader", key=SNAPSHOT_KEY)
    genuine = max(await store.markers(), key=lambda m: m.offset)
    ran = tmp_path / "ran"
    # The marker's MAC is over its exact value, which names the chunk's offset: sign it
    # once the chunk is on the topic. Its blob_mac is a real one, of other bytes.
    producer = make_producer(broker.bootstrap)
    await producer.start()
    try:
        payload = pickle.dumps(_Touch(ran))
        chunk = (await producer.send_and_wait(names.snapshots, payload, partition=0)).offset
        value = _marker(chunk, blob_mac=genuine.blob_mac)
        await producer.send_and_wait(
            names.snapshots,
            value,
            partition=0,
            headers=[("kind", b"marker"), ("mac", SNAPSHOT_KEY.sign_marker(value))],
        )
    finally:
        await producer.stop()

    state, logs = await _start_and_catch_up(broker.bootstrap, names)
    assert not ran.exists(), "forged chunks were unpickled"
    (line,) = _verification_lines(logs)
    assert line["snapshot"] == f"evil:{chunk}" and "not decoded" in line["event"]
    assert state["restored"] == genuine.snapshot_id  # the older genuine snapshot
    assert set(state["open"]) == set(expected) == set(first["open"])


async def test_without_a_key_an_external_broker_worker_writes_and_reads_no_snapshots(
    broker: EmbeddedBroker, names: TopicNames, tmp_path: Path
) -> None:
    """`stakewatch worker` on an external broker with no STAKEWATCH_SNAPSHOT_KEY: one log
    line says so, nothing lands on the snapshots topic, and a forged marker there (even one
    a key would sign) is not even read."""
    ran = tmp_path / "ran"
    payload = pickle.dumps(_Touch(ran))
    await publish(broker.bootstrap, names, _lines())
    await _forge(broker.bootstrap, names, payload, [(_marker, [("kind", b"marker")])])
    before = len(await read_topic(broker.bootstrap, names.snapshots))
    log = tmp_path / "worker.log"
    worker = WorkerProcess(broker.bootstrap, names.prefix, log, env={"STAKEWATCH_SNAPSHOT_KEY": ""})
    try:
        await wait_for(
            lambda: _ready_for(worker, 3), 30, "the worker caught up, snapshot interval passed"
        )
        assert worker.terminate() == 0  # a graceful stop would write its final snapshot
    finally:
        if worker.proc.poll() is None:
            worker.kill()
    assert not ran.exists()
    assert len(await read_topic(broker.bootstrap, names.snapshots)) == before
    assert log.read_text().count("snapshots off: STAKEWATCH_SNAPSHOT_KEY is not set") == 1


async def _ready_for(worker: WorkerProcess, seconds: float) -> bool:
    status = await worker.status()
    if not status or not status.get("ready"):
        return False
    await asyncio.sleep(seconds)  # several snapshot intervals (0.5 s) with records applied
    return True
