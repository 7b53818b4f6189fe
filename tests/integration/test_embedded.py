"""Embedded mode: the shared broker per data dir, and the archive that survives restarts."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from streams.kafka.broker import free_port
from streams.kafka.connect import BROKER_FILE, broker_session
from streams.kafka.replay import replay
from streams.kafka.topics import TopicNames
from streams.settings import Settings, load_settings
from tests.integration.kafka_read import read_topic

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "tests" / "fixtures" / "scale-ai-2025.ndjson"
BAD = [b"{not json", b"\xff\xfe\x00", b'{"type":"merger.rumoured"}']


@pytest.fixture
def embedded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.delenv("STAKEWATCH_BROKER", raising=False)
    monkeypatch.delenv("STAKEWATCH_TOPIC_PREFIX", raising=False)
    return load_settings(data_dir=tmp_path / "data")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def _snapshot(bootstrap: str, names: TopicNames) -> dict[str, list[tuple]]:
    """Everything the input and dead-letter topics hold, offsets included."""
    return {
        topic: [
            (r.partition, r.offset, r.key, r.value, r.timestamp, tuple(r.headers))
            for r in await read_topic(bootstrap, topic)
        ]
        for topic in (*names.inputs, names.dead_letter)
    }


async def test_a_restarted_embedded_broker_is_refilled_with_the_same_records(
    embedded: Settings,
) -> None:
    seed = SEED.read_bytes().splitlines()
    stream = b"\n".join(seed[:30] + BAD + seed[30:]) + b"\n"
    names = TopicNames(embedded.topic_prefix)
    async with broker_session(embedded) as first:
        assert first.embedded and first.owner and first.archive is not None
        assert (embedded.data_dir / BROKER_FILE).exists()
        summary = await replay(first, io.BytesIO(stream))
        assert sum(summary.dead_lettered.values()) == len(BAD)
        before = await _snapshot(first.bootstrap, names)
        pid = first.pid
    assert pid is not None and not _alive(pid)
    assert not (embedded.data_dir / BROKER_FILE).exists()

    async with broker_session(embedded) as second:
        assert second.owner and second.pid != pid
        assert second.refill is not None and second.refill.records == len(seed) + len(BAD)
        after = await _snapshot(second.bootstrap, names)
    assert after == before
    assert sum(len(v) for v in after.values()) == len(seed) + len(BAD)
    assert [r[3] for r in after[names.dead_letter]] == BAD


async def test_concurrent_sessions_share_one_broker(embedded: Settings) -> None:
    both_in = asyncio.Barrier(2)
    conns = []

    async def session() -> None:
        async with broker_session(embedded) as conn:
            conns.append(conn)
            await both_in.wait()

    await asyncio.gather(session(), session())
    assert conns[0].bootstrap == conns[1].bootstrap
    assert sorted(c.owner for c in conns) == [False, True]


async def test_a_stale_broker_file_is_replaced(embedded: Settings) -> None:
    embedded.data_dir.mkdir(parents=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    stale = {"bootstrap": f"127.0.0.1:{dead_port}", "pid": 2**22 + 1}
    (embedded.data_dir / BROKER_FILE).write_bytes(orjson.dumps(stale))
    async with broker_session(embedded) as conn:
        assert conn.owner and conn.bootstrap != stale["bootstrap"]
        assert orjson.loads((embedded.data_dir / BROKER_FILE).read_bytes())["pid"] == conn.pid


async def _replay_through(settings: Settings, port: int) -> int:
    async with broker_session(settings) as conn:
        assert (conn.bootstrap, conn.owner) == (f"127.0.0.1:{port}", False)
        await replay(conn, io.BytesIO(SEED.read_bytes()))
        return len(await read_topic(conn.bootstrap, TopicNames().spend))


def test_the_broker_command_serves_other_commands_and_stops_on_sigterm(
    embedded: Settings,
) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STAKEWATCH_")}
    env |= {"STAKEWATCH_DATA_DIR": str(embedded.data_dir), "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "streams", "broker", "--listen", f"127.0.0.1:{port}"]
    proc = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 15
        while not (embedded.data_dir / BROKER_FILE).exists():
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert asyncio.run(_replay_through(embedded, port)) == 48
        busy = subprocess.run(
            [*command[:-1], f"127.0.0.1:{free_port()}"], env=env, capture_output=True, timeout=30
        )
        assert busy.returncode == 1 and b"already runs on" in busy.stderr
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.stderr is not None and "embedded broker stopped" in proc.stderr.read()
    assert not (embedded.data_dir / BROKER_FILE).exists()


def test_sigterm_mid_replay_stops_the_broker_it_started(embedded: Settings) -> None:
    """A command that started the embedded broker never leaks it, however it is stopped."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STAKEWATCH_")}
    env |= {"STAKEWATCH_DATA_DIR": str(embedded.data_dir), "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "streams", "replay", str(SEED), "--rate", "20"]
    proc = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 15
        while not (embedded.data_dir / BROKER_FILE).exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        pid = orjson.loads((embedded.data_dir / BROKER_FILE).read_bytes())["pid"]
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 143
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not _alive(pid) and not (embedded.data_dir / BROKER_FILE).exists()
    archived = (embedded.data_dir / "archive-v1.ndjson").read_bytes().count(b"\n")
    assert 0 < archived < 80  # what was published before the signal is kept
