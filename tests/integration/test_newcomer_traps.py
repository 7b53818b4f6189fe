"""The traps a newcomer fell into end in a clear message, never a silent detour (issue #14).

Every test runs the real `stakewatch` command as a subprocess against a real (embedded
Tansu) broker, as a person following the README would.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from streams.kafka.broker import EmbeddedBroker, free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "streams" / "scenarios" / "scale-ai-2025.ndjson"
FAST_GROUP = {"STAKEWATCH_SESSION_TIMEOUT": "2", "STAKEWATCH_HEARTBEAT_INTERVAL": "0.5"}


def _env(**extra: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("STAKEWATCH_")}
    return {**clean, "PYTHONPATH": str(ROOT), **extra}


def stakewatch(*args: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streams", *args],
        env=_env(**env),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def spawn(*args: str, log: Path, **env: str) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "streams", *args],
            env=_env(**env),
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def wait_for(what: str, check, deadline: float = 90.0) -> None:
    """Poll ``check()`` until true; fail naming ``what`` after ``deadline`` seconds."""
    end = time.monotonic() + deadline
    while not check():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.2)


def ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as answer:
            return answer.status == 200
    except (OSError, urllib.error.URLError):
        return False


def stop(proc: subprocess.Popen[bytes]) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=30)


@pytest.fixture
def shared_broker(tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen[bytes]]]:
    """`stakewatch broker` on its own data dir, as shell 1 of the README runs it."""
    data_dir = tmp_path / "broker-data"
    log = tmp_path / "broker.log"
    proc = spawn(
        "broker", "--listen", f"127.0.0.1:{free_port()}", log=log, STAKEWATCH_DATA_DIR=str(data_dir)
    )
    wait_for("the broker's ready line", lambda: b"Ctrl-C to stop" in log.read_bytes())
    yield data_dir, proc
    stop(proc)


def test_replay_refuses_a_private_broker_while_one_runs_on_another_data_dir(
    shared_broker: tuple[Path, subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    """The old trap: replay from elsewhere printed "published 80 events" into a broker of
    its own. Now it names the running broker and how to reach it; --embedded insists."""
    data_dir, _ = shared_broker
    elsewhere = str(tmp_path / "elsewhere")
    refused = stakewatch("replay", str(SEED), STAKEWATCH_DATA_DIR=elsewhere)
    assert refused.returncode == 1, refused.stderr
    assert "published" not in refused.stdout
    assert f"STAKEWATCH_DATA_DIR={data_dir}" in refused.stderr
    assert "--embedded" in refused.stderr and refused.stderr.count("\n") == 1

    insisted = stakewatch("replay", str(SEED), "--embedded", STAKEWATCH_DATA_DIR=elsewhere)
    assert insisted.returncode == 0, insisted.stderr
    assert "started a private embedded broker" in insisted.stderr
    assert "published 80 events" in insisted.stdout

    shared = stakewatch("replay", str(SEED), STAKEWATCH_DATA_DIR=str(data_dir))
    assert shared.returncode == 0, shared.stderr
    assert "private" not in shared.stderr and "published 80 events" in shared.stdout


def test_an_empty_stakewatch_broker_is_refused_not_read_as_embedded(tmp_path: Path) -> None:
    """`STAKEWATCH_BROKER=$KAFKA` with KAFKA unset must not quietly mean "a private broker"."""
    done = stakewatch("topics", "create", STAKEWATCH_BROKER="", STAKEWATCH_DATA_DIR=str(tmp_path))
    assert done.returncode == 1
    assert "STAKEWATCH_BROKER is set but empty" in done.stderr
    ok = stakewatch(
        "topics", "create", "--embedded", STAKEWATCH_BROKER="", STAKEWATCH_DATA_DIR=str(tmp_path)
    )
    assert ok.returncode == 0, ok.stderr
    assert "created" in ok.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["replay", str(SEED)],
        ["alerts", "--from-beginning"],
        ["dead-letters"],
        ["topics", "create"],
        ["rebuild"],
    ],
    ids=["replay", "alerts", "dead-letters", "topics", "rebuild"],
)
def test_an_unreachable_broker_is_one_line_naming_it(args: list[str]) -> None:
    port = free_port()
    done = stakewatch(*args, "--broker", f"kafka://127.0.0.1:{port}")
    assert done.returncode == 1
    assert done.stderr.startswith(f"error: cannot reach the Kafka broker at 127.0.0.1:{port}")
    assert "connection refused" in done.stderr and "STAKEWATCH_BROKER" in done.stderr
    assert done.stderr.count("\n") == 1, done.stderr  # no traceback, no "Unclosed ..."


def test_a_worker_started_before_its_broker_waits_for_it(tmp_path: Path) -> None:
    """No traceback: it says it retries, then runs once the broker answers."""
    port, web = free_port(), free_port()
    log = tmp_path / "worker.log"
    worker = spawn(
        "worker",
        "--broker",
        f"kafka://127.0.0.1:{port}",
        "--web-port",
        str(web),
        log=log,
        STAKEWATCH_DATA_DIR=str(tmp_path / "data"),
        STAKEWATCH_LOG_FORMAT="json",
        **FAST_GROUP,
    )
    try:
        wait_for("a retry line", lambda: log.read_bytes().count(b"retrying in") >= 2)
        with EmbeddedBroker(f"127.0.0.1:{port}", log_dir=tmp_path):
            wait_for("the worker to be ready", lambda: ready(web))
            assert stop(worker) == 0
    finally:
        stop(worker)
    lines = [orjson.loads(line) for line in log.read_bytes().splitlines() if line.startswith(b"{")]
    retries = [line for line in lines if "retrying in" in line["event"]]
    assert retries[0]["event"].startswith(f"cannot reach the Kafka broker at 127.0.0.1:{port}")
    assert b"Traceback" not in log.read_bytes()


def test_rebuild_refuses_while_a_worker_runs_and_works_once_it_stopped(
    shared_broker: tuple[Path, subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    """A rebuild written under a running worker was silently undone by its next snapshot."""
    data_dir, _ = shared_broker
    env = {"STAKEWATCH_DATA_DIR": str(data_dir), **FAST_GROUP}
    web = free_port()
    worker = spawn("worker", "--web-port", str(web), log=tmp_path / "worker.log", **env)
    try:
        wait_for("the worker to be ready", lambda: ready(web))
        refused = stakewatch("rebuild", **env)
        assert refused.returncode == 1
        assert f"worker (pid {worker.pid})" in refused.stderr
        assert "Stop them first" in refused.stderr
        assert "rebuild requested" not in refused.stdout
    finally:
        assert stop(worker) == 0
    done = stakewatch("rebuild", **env)
    assert done.returncode == 0, done.stderr
    assert "rebuild requested" in done.stdout


def test_replay_names_each_rejected_line_and_dead_letters_reads_them_back(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    env = {"STAKEWATCH_BROKER": broker.url, "STAKEWATCH_TOPIC_PREFIX": prefix}
    lines = [*SEED.read_bytes().splitlines()[:3], b"{not json", b'{"type": "merger.rumoured"}']
    events = tmp_path / "events.ndjson"
    events.write_bytes(b"\n".join(lines) + b"\n")
    dead = tmp_path / "dead.ndjson"
    assert stakewatch("topics", "create", **env).returncode == 0

    done = stakewatch("replay", str(events), "--dead-letter", str(dead), **env)
    assert done.returncode == 0, done.stderr
    assert f"{events}:4: invalid_json: " in done.stderr
    assert f"{events}:5: unknown_type: unknown type 'merger.rumoured'" in done.stderr
    written = [orjson.loads(line) for line in dead.read_bytes().splitlines()]
    assert [(d["line"], d["original"]) for d in written] == [
        (4, "{not json"),
        (5, lines[4].decode()),
    ]

    read = stakewatch("dead-letters", **env)
    assert read.returncode == 0, read.stderr
    docs = [orjson.loads(line) for line in read.stdout.splitlines()]
    assert [(d["source_line"], d["source_file"], d["original"]) for d in docs] == [
        (4, str(events), "{not json"),
        (5, str(events), lines[4].decode()),
    ]
    assert all(d["reason"].startswith(d["code"] + ": ") for d in docs)


def test_rebuild_with_no_broker_running_says_a_worker_replays_anyway(tmp_path: Path) -> None:
    """A reset marker in a private broker would vanish with it (snapshots are not archived);
    a worker started on that data dir finds no snapshot and replays the archive anyway."""
    data_dir = str(tmp_path / "data")
    done = stakewatch("rebuild", STAKEWATCH_DATA_DIR=data_dir)
    assert done.returncode == 0, done.stderr
    assert "nothing to rebuild here" in done.stderr and "rebuild requested" not in done.stdout
    since = stakewatch("rebuild", "--from", "2025-06-01T00:00:00Z", STAKEWATCH_DATA_DIR=data_dir)
    assert since.returncode == 1
    assert "start `stakewatch broker` first" in since.stderr
