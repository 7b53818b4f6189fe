"""`stakewatch bench`: the streaming figures, the worker beside its peers in one run.

One broker (embedded Tansu unless `--broker`), one seeded stream (`streams.bench.generate`), and
every contender reading the same records from the same topics, one after another, so the
ratios compare designs rather than machines or moments:

1. **Throughput**: the real worker (validation, state, idempotency, alerting, snapshots),
   a raw aiokafka consumer that only decodes JSON (the ceiling), a plain faust table-sum
   agent (the naive peer) and a Quix Streams app doing the same sum (the peer a user would
   pick). Each runs in its own interpreter (`streams.bench.peers`) and is timed from its
   first record processed to its last, so group joins do not count; wall times are kept.
2. **Alert latency**: `stakewatch worker` with a webhook receiver pointed at a local HTTP
   server, a 10,000 events/s live spend stream from another process, and 200 stakes that
   each open one conflict: stake produced → alert record on the alerts topic, and → HTTP.
3. **Recovery**: `kill -9` of a `stakewatch worker` holding the whole stream's state, then
   a new one until `/readyz` (snapshot restore, then the tail replayed).
4. **Rebuild**: a reset marker (`stakewatch rebuild`), then a fresh worker until ready.

No thresholds are asserted anywhere: the figures are printed with their parameters and the
targets from the issue beside them (docs/performance.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson

from streams.bench.floor import parse_seconds
from streams.bench.generate import StreamParams, generate
from streams.kafka.broker import free_port
from streams.kafka.topics import TopicNames, default_topics, ensure_topics

__all__ = [
    "STREAM_FIGURES",
    "TARGETS",
    "StreamSizes",
    "percentiles",
    "run_bench",
    "stream_figures",
    "stream_rows",
]

Progress = Callable[[str], None]

#: The figures this module adds to the `figures` object (numbers, or null when not run).
STREAM_FIGURES = (
    "worker_events_per_s",
    "raw_consumer_events_per_s",
    "faust_naive_events_per_s",
    "quix_events_per_s",
    "alert_latency_p50_ms",
    "alert_latency_p95_ms",
    "alert_latency_p99_ms",
    "alert_http_latency_p50_ms",
    "alert_http_latency_p95_ms",
    "alert_http_latency_p99_ms",
    "recovery_s",
    "rebuild_s",
    "rebuild_events_per_s",
    "rebuild_vs_read_parse",
    "rebuild_peak_rss_mb",
)

#: The issue's targets, printed beside the figures (never asserted).
TARGETS = {
    "worker_events_per_s": "≥ quix (ratio ≥ 1.0); floor ≥ 25,000 and ≥ 5× faust_naive",
    "alert_latency_p99_ms": "≤ 500",
    "alert_http_latency_p99_ms": "≤ 750",
    "engine_events_per_s": "≥ 100,000",
    "ownership_event_p50_ms": "≤ 5",
    "ownership_event_p99_ms": "≤ 50",
    "state_rss_mb_per_million": "≤ 1,500 (1M entities + holdings + contracts)",
    "recovery_s": "≤ 10 (1,000,000 keys)",
    "rebuild_s": "≤ 60 (1,000,000 events)",
    "rebuild_vs_read_parse": "stated (issue 18): a replay's cost over parsing the same lines",
}

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_FAST_GROUP = {"STAKEWATCH_SESSION_TIMEOUT": "6", "STAKEWATCH_HEARTBEAT_INTERVAL": "1"}


@dataclass(frozen=True, slots=True)
class StreamSizes:
    """How big each part of the run is; `quick()` keeps the whole stream part near a minute."""

    events: int = 1_000_000  # the mixed stream every throughput contender reads
    tail: int = 20_000  # published after the recovery worker is up: replayed after kill -9
    stakes: int = 200  # each opens one conflict (the latency samples)
    background_rate: int = 10_000  # live spend events/s during the latency figure
    stake_spacing_s: float = 0.025
    warmup_s: float = 3.0  # background load before the first stake
    seed: int = 7

    @classmethod
    def quick(cls) -> StreamSizes:
        return cls(events=50_000, tail=2_000, warmup_s=2.0)


# -- publishing -------------------------------------------------------------------------


def _route(raw: bytes, names: TopicNames) -> tuple[str, bytes, int, dict]:
    """(topic, key, event-time ms, doc) for a generated line: the keys `streams.kafka.topics.route`
    gives, without pydantic (the generator's output is valid by construction, and decoding
    a million lines through the models would dominate the run)."""
    doc = orjson.loads(raw)
    etype, data = doc["type"], doc["data"]
    kind = etype.partition(".")[0]
    if kind == "spend":
        topic, key = names.spend, data["client"]
    elif kind == "contract":
        topic, key = names.contracts, data["contract_id"]
    elif kind == "ownership":
        topic, key = names.ownership, data["asset"]
    elif kind == "rivalry":
        topic, key = names.reference, "|".join(sorted((data["a"], data["b"])))
    else:
        topic, key = names.reference, data["id"]
    when = dt.datetime.fromisoformat(doc["time"].replace("Z", "+00:00"))
    return topic, key.encode(), (when - _EPOCH) // dt.timedelta(milliseconds=1), doc


async def publish_lines(bootstrap: str, names: TopicNames, lines: Iterable[bytes]) -> dict:
    """Produce each line to its topic, keyed and stamped with its event time (as
    `stakewatch replay` does); counts per topic and the spend total the peers must reach."""
    from aiokafka import AIOKafkaProducer

    await ensure_topics(bootstrap, default_topics(names.prefix))
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=512 * 1024
    )
    await producer.start()
    by_topic: Counter[str] = Counter()
    spend_sum = 0.0
    started = time.perf_counter()
    try:
        for raw in lines:
            topic, key, stamp, doc = _route(raw, names)
            if topic == names.spend:
                spend_sum += doc["data"]["amount"]
            by_topic[topic] += 1
            await producer.send(topic, raw, key=key, timestamp_ms=stamp)
        await producer.flush()
    finally:
        await producer.stop()
    elapsed = time.perf_counter() - started
    total = sum(by_topic.values())
    return {
        "events": total,
        "by_topic": dict(by_topic),
        "spend_events": by_topic[names.spend],
        "spend_sum": spend_sum,
        "seconds": round(elapsed, 2),
        "events_per_s": round(total / elapsed) if elapsed else None,
    }


# -- child processes --------------------------------------------------------------------


def _env() -> dict[str, str]:
    root = str(Path(__file__).resolve().parents[2])
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])),
    }


def _peer(kind: str, args: dict, log: Path, timeout: float) -> dict:
    """Run `streams.bench.peers KIND` to completion; its JSON line."""
    with open(log, "ab") as err:
        done = subprocess.run(
            [sys.executable, "-m", "streams.bench.peers", kind, json.dumps(args)],
            stdout=subprocess.PIPE,
            stderr=err,
            env=_env(),
            timeout=timeout,
            check=False,
        )
    lines = done.stdout.decode(errors="replace").strip().splitlines()
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{kind} exited {done.returncode}; see {log}")
    return json.loads(lines[-1])


def _spawn(
    kind: str, args: dict, log: Path, stdout: int | None = subprocess.PIPE
) -> subprocess.Popen:
    """Start `streams.bench.peers KIND` in the background; stderr (and, unless piped,
    stdout) to `log`."""
    with open(log, "ab") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "streams.bench.peers", kind, json.dumps(args)],
            stdout=err if stdout is None else stdout,
            stderr=err,
            env=_env(),
        )


def _stop(proc: subprocess.Popen, grace: float = 20.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


class _WorkerProcess:
    """`stakewatch worker` as a child process (what an operator runs and what gets
    `kill -9`), observed through `/readyz`."""

    def __init__(
        self, bootstrap: str, prefix: str, group: str, log: Path, env: dict | None = None
    ) -> None:
        self.port = free_port()
        self.spawned = time.time()
        environment = {
            **_env(),
            "STAKEWATCH_BROKER": f"kafka://{bootstrap}",
            "STAKEWATCH_TOPIC_PREFIX": prefix,
            "STAKEWATCH_GROUP_ID": group,
            "STAKEWATCH_LOG_FORMAT": "json",
            "STAKEWATCH_DATA_DIR": str(log.parent / "data"),
            **_FAST_GROUP,
            **(env or {}),
        }
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "streams", "worker", "--web-port", str(self.port)],
                env=environment,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    async def status(self, client: httpx.AsyncClient) -> dict | None:
        try:
            response = await client.get(f"http://127.0.0.1:{self.port}/readyz")
            return response.json()
        except (httpx.HTTPError, ValueError):
            return None

    async def wait(
        self,
        predicate: Callable[[dict[str, Any]], object],
        within: float,
        what: str,
        interval: float = 0.05,
    ) -> tuple[float, dict[str, Any]]:
        """Poll `/readyz` until `predicate(status)`; (wall time it first held, status)."""
        deadline = time.monotonic() + within
        async with httpx.AsyncClient(timeout=2) as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"worker exited {self.proc.returncode} waiting for {what}")
                status = await self.status(client)
                if status is not None and predicate(status):
                    return time.time(), status
                await asyncio.sleep(interval)
        raise RuntimeError(f"timed out after {within:.0f} s waiting for the worker: {what}")

    def kill9(self) -> float:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        return time.time()

    def stop(self) -> None:
        _stop(self.proc)


def peak_rss_mb(pid: int) -> float | None:
    """A live process's peak RSS (VmHWM), in MB; None where /proc cannot tell."""
    try:
        with open(f"/proc/{pid}/status", "rb") as status:
            for line in status:
                if line.startswith(b"VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


# -- statistics -------------------------------------------------------------------------


def percentiles(samples: list[float]) -> dict[str, float | None]:
    """p50/p95/p99 by nearest rank (the figure is a sample that was observed)."""
    if not samples:
        return {"p50": None, "p95": None, "p99": None, "max": None}
    ordered = sorted(samples)

    def rank(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, max(0, int(q * len(ordered) + 0.5) - 1))], 1)

    return {"p50": rank(0.50), "p95": rank(0.95), "p99": rank(0.99), "max": round(ordered[-1], 1)}


def _rate(result: dict, expected: int) -> dict:
    """Events/s from the first record processed to the last, plus the wall from spawn."""
    first, done = result.get("first"), result.get("done")
    counted = result.get("processed", 0) - result.get("first_count", 0)
    value = None
    if first is not None and done is not None and done > first and counted > 0:
        value = round(counted / (done - first))
    started = result.get("started")
    cpu_first, cpu_done = result.get("cpu_first"), result.get("cpu_done")
    cpu = None if cpu_first is None or cpu_done is None else cpu_done - cpu_first
    cores = per_event = None
    if value and cpu is not None and first is not None and done is not None:
        cores, per_event = round(cpu / (done - first), 2), round(cpu / counted * 1e6, 2)
    return {
        "value": value,
        # CPU over the same span, every thread of the process: how many cores it kept busy
        # and what an event cost, which a busy shared machine moves far less than events/s
        "cpu_s": None if cpu is None else round(cpu, 2),
        "cores": cores,
        "cpu_us_per_event": per_event,
        "processed": result.get("processed"),
        "expected": expected,
        "seconds": None if first is None or done is None else round(done - first, 2),
        "wall_s": None if started is None or done is None else round(done - started, 2),
    }


# -- the figures ------------------------------------------------------------------------


async def _throughput(
    bootstrap: str, names: TopicNames, published: dict, work: Path, say: Progress, run: str
) -> dict:
    events = published["events"]
    spend = published["spend_events"]
    out: dict[str, Any] = {}

    say(f"raw aiokafka consumer: {events:,} records, JSON decode only")
    raw = await asyncio.to_thread(
        _peer,
        "raw",
        {"bootstrap": bootstrap, "topics": list(names.inputs), "expected": events},
        work / "raw.log",
        600,
    )
    out["raw_consumer"] = {
        **_rate(raw, events),
        "params": {"client": "aiokafka getmany(max_records=50,000), manual assignment, orjson"},
    }

    say(f"worker: {events:,} events, full validation, state, idempotency, alerts")
    worker = await asyncio.to_thread(
        _peer,
        "worker",
        {
            "bootstrap": bootstrap,
            "prefix": names.prefix,
            "group": f"{run}-worker",
            "expected": events,
        },
        work / "worker-throughput.log",
        3600,
    )
    out["worker"] = {
        **_rate(worker, events),
        "join_s": round(worker["assigned"] - worker["started"], 2),
        "final_snapshot_and_stop_s": worker["stop_s"],
        "counts": worker["counts"],
        "state": worker["state"],
        "failure": worker["failure"],
        "params": {
            "process": "streams.agents.worker.Worker in a fresh interpreter, with Metrics "
            "and the worker's logging; defaults (max_records=10,000, fetch wait 100 ms, "
            "snapshots every 5 s stretched to 2× their cost, session 6 s / 1 s)",
            "counted_from": "the first poll (2 ms) that sees a record applied",
        },
    }

    say(f"faust-streaming naive agent: per-event table sum over {spend:,} spend events")
    out["faust_naive"] = await asyncio.to_thread(
        _faust, bootstrap, names.spend, spend, published["spend_sum"], work, run
    )

    say(f"Quix Streams: stateful sum over {spend:,} spend events")
    out["quix"] = await asyncio.to_thread(
        _quix, bootstrap, names.spend, spend, published["spend_sum"], work, run
    )
    return out


def _faust(bootstrap: str, topic: str, expected: int, total: float, work: Path, run: str) -> dict:
    """Run the faust agent until its progress file says every spend event was summed."""
    result_file = work / "faust-result.json"
    args = {
        "bootstrap": bootstrap,
        "topic": topic,
        "expected": expected,
        "app_id": f"{run}-faust",
        "datadir": str(work / "faust-data"),
        "out": str(result_file),
    }
    started = time.time()
    proc = _spawn("faust", args, work / "faust.log", stdout=None)
    try:
        deadline = time.monotonic() + max(120.0, expected / 1000)
        while not result_file.exists():
            if proc.poll() is not None:
                raise RuntimeError(
                    f"faust agent exited {proc.returncode}; see {work / 'faust.log'}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError("faust agent did not finish in time")
            time.sleep(0.05)
        time.sleep(0.05)  # the file is written in one call; let it land
        result = json.loads(result_file.read_text())
    finally:
        _stop(proc)
    result["started"] = started
    return {
        **_rate(result, expected),
        "sum_matches": abs(result["sum"] - total) <= 1e-6 * max(1.0, abs(total)),
        "table_keys": result["table_keys"],
        "params": {
            "agent": "async for key, value in stream.items(): table[key] += amount",
            "faust": _version("faust-streaming"),
            "settings": "broker_session_timeout=6, broker_heartbeat_interval=1, "
            "processing_guarantee=at_least_once, topic_disable_leader=True, store=memory://",
        },
    }


def _quix(bootstrap: str, topic: str, expected: int, total: float, work: Path, run: str) -> dict:
    version = _version("quixstreams")
    if version is None:
        return {
            "value": None,
            "reason": "quixstreams is not installed (pip install -e '.[bench]')",
            "params": {},
        }
    args = {
        "bootstrap": bootstrap,
        "topic": topic,
        "expected": expected,
        "group": f"{run}-quix",
        "state_dir": str(work / "quix-state"),
    }
    try:
        result = _peer("quix", args, work / "quix.log", max(180.0, expected / 2000))
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        return {"value": None, "reason": str(exc), "params": {"quixstreams": version}}
    return {
        **_rate(result, expected),
        "sum_matches": abs(result["sum"] - total) <= 1e-6 * max(1.0, abs(total)),
        "params": {
            "app": "sdf.update(add, stateful=True): state.set('sum', state.get('sum') + amount)",
            "quixstreams": version,
            "settings": "defaults (RocksDB state, changelog per key at 5 s checkpoints), "
            "session.timeout.ms=6000",
        },
    }


def _version(dist: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _stamp(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + f".{ms % 1000:03d}000Z"


def _event(eid: str, etype: str, data: dict, source: str = "/bench") -> tuple[bytes, int]:
    ms = time.time_ns() // 1_000_000
    body = {
        "specversion": "1.0",
        "id": eid,
        "source": source,
        "type": etype,
        "time": _stamp(ms),
        "data": data,
    }
    return orjson.dumps(body), ms


async def _alert_latency(bootstrap: str, sizes: StreamSizes, work: Path, say: Progress) -> dict:
    """Stake produced → its alert record on the alerts topic, and → a local webhook."""
    from aiohttp import web
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

    run = f"bench-lat-{uuid.uuid4().hex[:6]}"
    names = TopicNames(run)
    await ensure_topics(bootstrap, default_topics(run))
    n = sizes.stakes
    stakes: dict[str, float] = {}
    on_topic: dict[str, float] = {}
    on_http: dict[str, float] = {}

    arrived_all = asyncio.Event()

    def check() -> None:
        if len(on_topic) >= n and len(on_http) >= n:
            arrived_all.set()

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        arrived = time.time()
        doc = orjson.loads(body)
        if doc.get("status") == "firing":
            on_http.setdefault(doc["event_id"], arrived)
            check()
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    env = {
        "STAKEWATCH_WEBHOOK_URL": f"http://127.0.0.1:{port}/hook",
        "STAKEWATCH_WEBHOOK_SECRET": "bench-only-secret",
    }
    worker = _WorkerProcess(bootstrap, run, f"{run}-g", work / "worker-latency.log", env)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=10
    )
    load: subprocess.Popen | None = None
    try:
        await producer.start()
        await worker.wait(lambda s: s.get("ready"), 60, "ready")
        say(f"alert latency: {n} rivalries + {n} contracts, then {n} stakes under load")
        for i in range(n):  # client-i ↔ lab-i rivals; client-i buys sensitive work of vendor-i
            raw, ms = _event(
                f"prep-r{i}", "rivalry.declared", {"a": f"lat-client-{i}", "b": f"lat-lab-{i}"}
            )
            key = "|".join(sorted((f"lat-client-{i}", f"lat-lab-{i}"))).encode()
            await producer.send(names.reference, raw, key=key, timestamp_ms=ms)
        for i in range(n):
            data: dict[str, Any] = {
                "contract_id": f"lat-c-{i}",
                "client": f"lat-client-{i}",
                "vendor": f"lat-vendor-{i}",
                "category": "data-labeling",
                "data_classes": ["source_code"],
                "annual_value": 1_000_000.0,
            }
            raw, ms = _event(f"prep-c{i}", "contract.signed", data, source="/erp/bench")
            await producer.send(
                names.contracts, raw, key=data["contract_id"].encode(), timestamp_ms=ms
            )
        await producer.flush()
        await worker.wait(lambda s: s.get("applied", 0) >= 2 * n, 60, "the preparation applied")

        tp = TopicPartition(names.alerts, 0)
        await consumer.start()
        consumer.assign([tp])
        await consumer.seek_to_end(tp)

        async def read_alerts() -> None:
            while True:
                batch = await consumer.getmany(timeout_ms=100, max_records=1000)
                arrived = time.time()
                for records in batch.values():
                    for r in records:
                        doc = orjson.loads(r.value)
                        if doc.get("status") == "firing":
                            on_topic.setdefault(doc["event_id"], arrived)
                check()

        reader = asyncio.create_task(read_alerts())
        injection_s = n * sizes.stake_spacing_s
        seconds = sizes.warmup_s + injection_s + 15
        load_args = {
            "bootstrap": bootstrap,
            "topic": names.spend,
            "rate": sizes.background_rate,
            "seconds": seconds,
        }
        load = _spawn("spend_load", load_args, work / "spend-load.log")
        await asyncio.sleep(sizes.warmup_s)
        _, before = await worker.wait(lambda s: True, 5, "status")
        for i in range(n):
            data = {
                "owner": f"lat-lab-{i}",
                "asset": f"lat-vendor-{i}",
                "percent": 30.0,
                "status": "closed",
            }
            raw, ms = _event(f"stake-{i}", "ownership.stake", data, source="/feeds/filings")
            stakes[f"stake-{i}"] = time.time()
            await producer.send(names.ownership, raw, key=data["asset"].encode(), timestamp_ms=ms)
            await asyncio.sleep(sizes.stake_spacing_s)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(arrived_all.wait(), 20)
        _, after = await worker.wait(lambda s: True, 5, "status")
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        load.send_signal(signal.SIGTERM)
        load_out, _ = await asyncio.to_thread(load.communicate, timeout=30)
    finally:
        if load is not None and load.poll() is None:
            load.kill()
        worker.stop()
        with contextlib.suppress(Exception):
            await consumer.stop()
        with contextlib.suppress(Exception):
            await producer.stop()
        await runner.cleanup()
    topic_ms = [(on_topic[e] - t) * 1000 for e, t in stakes.items() if e in on_topic]
    http_ms = [(on_http[e] - t) * 1000 for e, t in stakes.items() if e in on_http]
    lines = load_out.decode(errors="replace").strip().splitlines() if load_out else []
    background = json.loads(lines[-1]) if lines else None
    applied = after.get("applied", 0) - before.get("applied", 0)
    return {
        "topic": {**percentiles(topic_ms), "samples": len(topic_ms)},
        "http": {**percentiles(http_ms), "samples": len(http_ms)},
        "series_ms": {  # in injection order: a backlog shows as a rising series
            "topic": [round(x) for x in topic_ms],
            "http": [round(x) for x in http_ms],
        },
        "params": {
            "stakes": n,
            "stake_spacing_ms": round(sizes.stake_spacing_s * 1000),
            "background_rate_target": sizes.background_rate,
            "background": background,
            "applied_during_injection": applied,
            "worker": "stakewatch worker (subprocess), webhook receiver → local aiohttp server;"
            " defaults: fetch wait 100 ms, merge grace 200 ms, delivery fetch wait 100 ms",
            "measured": "send() of the stake (wall clock) → first sight of its firing record "
            "by a consumer with a 10 ms fetch wait / by the HTTP handler",
        },
    }


_MARKS = {
    "Joined group": "group_joined",
    "restoring snapshot": "restore_started",
    "leases assigned": "snapshot_restored_leases_held",
    "worker caught up": "caught_up",
}


def _log_marks(log: Path) -> dict[str, float]:
    """When the restarted worker passed each step, from its JSON log (the last group join
    and the first of every other step): where the recovery time goes."""
    marks: dict[str, float] = {}
    for line in log.read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError, KeyError, TypeError):
            doc = json.loads(line)
            event = doc["event"]
            name = next((v for k, v in _MARKS.items() if event.startswith(k)), None)
            if name is None or (name in marks and name != "group_joined"):
                continue
            stamp = dt.datetime.fromisoformat(doc["timestamp"].replace("Z", "+00:00"))
            if name == "group_joined" and "snapshot_restored_leases_held" in marks:
                continue
            marks[name] = stamp.timestamp()
    return marks


def rebuild_result(
    worker: _WorkerProcess, ready_at: float, status: dict[str, Any], floor: float | None
) -> dict[str, Any]:
    """The rebuild figure of a worker that just became ready (before it is stopped): time
    from spawn, events/s, its ratio to the same lines' read-and-parse rate (``floor``,
    events/s) and the worker's peak RSS."""
    seconds = ready_at - worker.spawned
    events = status.get("applied") or 0
    rate = events / seconds if seconds > 0 else None
    return {
        "value": round(seconds, 2),
        "unit": "s",
        "events_per_s": round(rate) if rate else None,
        "vs_read_parse": float(f"{rate / floor:.4g}") if rate and floor else None,
        "peak_rss_mb": peak_rss_mb(worker.proc.pid),
        "params": {
            "events": events,
            "read_parse_events_per_s": round(floor) if floor else None,
            "from": "process spawn (reset marker already written) to /readyz 200, "
            "including the group join and the alerts-topic reconciliation",
        },
    }


async def _recovery_and_rebuild(
    bootstrap: str,
    names: TopicNames,
    state_events: int,
    tail: list[bytes],
    group: str,
    work: Path,
    say: Progress,
    read_parse_rate: float | None = None,
) -> dict:
    """kill -9 a worker that holds the stream's state, time its successor to ready; then a
    reset marker and a fresh worker rebuilding everything."""
    from streams.kafka.rebuild import request_rebuild

    out: dict[str, Any] = {}
    first = _WorkerProcess(bootstrap, names.prefix, group, work / "worker-recovery-1.log")
    second: _WorkerProcess | None = None
    third: _WorkerProcess | None = None
    floor = read_parse_rate
    try:
        say("recovery: a worker restores the stream's state, applies a tail, then kill -9")
        ready_at, status = await first.wait(lambda s: s.get("ready"), 900, "ready")
        out["first_ready_s"] = round(ready_at - first.spawned, 2)
        base = status["applied"]  # 0 when it restored the throughput worker's last snapshot
        out["first_replayed"] = base
        published = await publish_lines(bootstrap, names, tail)
        await first.wait(
            lambda s: s.get("ready") and s.get("applied", 0) >= base + published["events"],
            300,
            "the tail applied",
        )
        killed = first.kill9()
        second = _WorkerProcess(bootstrap, names.prefix, group, work / "worker-recovery-2.log")
        up_at, _ = await second.wait(lambda s: True, 60, "the web port", interval=0.02)
        leased_at, _ = await second.wait(lambda s: bool(s.get("leases")), 120, "leases")
        ready_at, status = await second.wait(lambda s: s.get("ready"), 900, "ready")
        marks = _log_marks(work / "worker-recovery-2.log")
        out["recovery"] = {
            "value": round(ready_at - killed, 2),
            "unit": "s",
            "breakdown_s": {
                "kill_to_process_up": round(up_at - killed, 2),
                "kill_to_leases": round(leased_at - killed, 2),
                "kill_to_ready": round(ready_at - killed, 2),
                **{f"kill_to_{k}": round(v - killed, 2) for k, v in marks.items()},
            },
            "restored": status.get("restored"),
            "replayed": status.get("applied"),  # at most the tail: what the snapshot lacked
            "params": {
                "state_events": state_events + published["events"],
                "tail_after_snapshot": published["events"],
                "session_timeout_s": float(_FAST_GROUP["STAKEWATCH_SESSION_TIMEOUT"]),
                "heartbeat_s": float(_FAST_GROUP["STAKEWATCH_HEARTBEAT_INTERVAL"]),
                "ready": "/readyz 200: leases held, snapshot restored, caught up",
            },
        }
        second.stop()
        say("rebuild: reset marker, then a fresh worker replays every event")
        await request_rebuild(bootstrap, names)
        third = _WorkerProcess(bootstrap, names.prefix, group, work / "worker-rebuild.log")
        ready_at, status = await third.wait(lambda s: s.get("ready"), 1800, "ready")
        out["rebuild"] = rebuild_result(third, ready_at, status, floor)
    finally:
        for proc in (first, second, third):
            if proc is not None:
                proc.stop()
    return out


async def _streams(bootstrap: str, sizes: StreamSizes, work: Path, say: Progress) -> dict:
    run = f"bench-{uuid.uuid4().hex[:6]}"
    names = TopicNames(run)
    params = StreamParams(events=sizes.events + sizes.tail, seed=sizes.seed)
    say(f"generating {params.events:,} events (seed {params.seed}) and publishing {sizes.events:,}")
    lines = list(generate(params))
    parsed, parse_s = parse_seconds(lines)  # the rebuild's floor: the same lines, parsed
    published = await publish_lines(bootstrap, names, lines[: sizes.events])
    tail = lines[sizes.events :]
    del lines
    throughput = await _throughput(bootstrap, names, published, work, say, run)
    restart = await _recovery_and_rebuild(
        bootstrap,
        names,
        published["events"],
        tail,
        f"{run}-worker",
        work,
        say,
        read_parse_rate=parsed / parse_s if parse_s else None,
    )
    restart["recovery"]["params"]["state_at_snapshot"] = throughput["worker"]["state"]
    latency = await _alert_latency(bootstrap, sizes, work, say)
    return {
        "stream": {**StreamParams(events=sizes.events, seed=sizes.seed).describe()},
        "published": published,
        "throughput": throughput,
        "latency": latency,
        **restart,
    }


def stream_figures(
    quick: bool,
    broker: str | None = None,
    progress: Progress = lambda _: None,
    work_dir: Path | None = None,
    sizes: StreamSizes | None = None,
) -> dict:
    """Every stream figure from one run on one broker; `broker`: `host:port` or
    `kafka://…` of an external broker (else an embedded Tansu for the run's lifetime)."""
    from streams.kafka.broker import run_broker

    sizes = sizes or (StreamSizes.quick() if quick else StreamSizes())
    work = work_dir or Path(tempfile.mkdtemp(prefix="stakewatch-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    load_before = [round(x, 2) for x in os.getloadavg()]
    with run_broker(broker, work) as bootstrap:
        detail = asyncio.run(_streams(bootstrap, sizes, work, progress))
    t = detail["throughput"]
    lat = detail["latency"]
    figures = {
        "worker_events_per_s": t["worker"]["value"],
        "raw_consumer_events_per_s": t["raw_consumer"]["value"],
        "faust_naive_events_per_s": t["faust_naive"]["value"],
        "quix_events_per_s": t["quix"]["value"],
        "alert_latency_p50_ms": lat["topic"]["p50"],
        "alert_latency_p95_ms": lat["topic"]["p95"],
        "alert_latency_p99_ms": lat["topic"]["p99"],
        "alert_http_latency_p50_ms": lat["http"]["p50"],
        "alert_http_latency_p95_ms": lat["http"]["p95"],
        "alert_http_latency_p99_ms": lat["http"]["p99"],
        "recovery_s": detail["recovery"]["value"],
        "rebuild_s": detail["rebuild"]["value"],
        "rebuild_events_per_s": detail["rebuild"]["events_per_s"],
        "rebuild_vs_read_parse": detail["rebuild"]["vs_read_parse"],
        "rebuild_peak_rss_mb": detail["rebuild"]["peak_rss_mb"],
    }
    worker = figures["worker_events_per_s"]

    def ratio(other: float | None) -> float | None:
        return round(worker / other, 2) if worker and other else None

    per_event = {k: t[k].get("cpu_us_per_event") for k in ("worker", "quix")}
    ratios = {
        "worker_vs_quix": ratio(figures["quix_events_per_s"]),
        # events per CPU-second, worker over Quix (the worker's snapshot child not counted)
        "worker_vs_quix_per_cpu_s": (
            round(per_event["quix"] / per_event["worker"], 2)
            if per_event["quix"] and per_event["worker"]
            else None
        ),
        "worker_vs_faust_naive": ratio(figures["faust_naive_events_per_s"]),
        "worker_vs_raw_consumer": ratio(figures["raw_consumer_events_per_s"]),
    }
    detail["throughput"]["worker"]["compare"] = ratios
    return {
        "figures": figures,
        "ratios": ratios,
        "figure_details": _figure_details(figures, detail, ratios),
        "details": detail,
        "run": {
            "broker": "embedded Tansu (memory storage)" if broker is None else bootstrap,
            "sizes": asdict(sizes),
            "seconds": round(time.perf_counter() - started, 1),
            "cpus": os.cpu_count(),
            "load_average_at_start": load_before,
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
            "work_dir": str(work),
        },
    }


def _figure_details(figures: dict, detail: dict, ratios: dict) -> dict:
    """Per figure: value, unit, the parameters that produced it and the same-run comparison
    (so a figure quoted alone still says what it was measured against)."""
    t, lat = detail["throughput"], detail["latency"]
    stream = {**detail["stream"], "published": detail["published"]["by_topic"]}
    out: dict[str, dict] = {}
    for name, part in (
        ("worker_events_per_s", t["worker"]),
        ("raw_consumer_events_per_s", t["raw_consumer"]),
        ("faust_naive_events_per_s", t["faust_naive"]),
        ("quix_events_per_s", t["quix"]),
    ):
        out[name] = {
            "value": figures[name],
            "unit": "events/s",
            "params": {**part.get("params", {}), "stream": stream},
            "compare": ratios,
        }
        if part.get("reason"):
            out[name]["reason"] = part["reason"]
    for name in STREAM_FIGURES[4:10]:
        out[name] = {
            "value": figures[name],
            "unit": "ms",
            "params": lat["params"],
            "compare": {"to_topic": lat["topic"], "to_http": lat["http"]},
        }
    for name, key in (("recovery_s", "recovery"), ("rebuild_s", "rebuild")):
        out[name] = {"value": figures[name], "unit": "s", "params": detail[key]["params"]}
    for name, unit in (
        ("rebuild_events_per_s", "events/s"),
        ("rebuild_vs_read_parse", "ratio"),
        ("rebuild_peak_rss_mb", "MB"),
    ):
        out[name] = {"value": figures[name], "unit": unit, "params": detail["rebuild"]["params"]}
    return out


# -- presentation -----------------------------------------------------------------------


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float) and value < 1:
        return f"{value:.3g}"  # ratios such as rebuild_vs_read_parse
    if isinstance(value, float) and value < 100:
        return f"{value:,.2f}"
    return f"{value:,.0f}" if isinstance(value, int | float) else str(value)


def _cores(part: dict) -> str:
    return f"{_fmt(part.get('cores'))} cores, {_fmt(part.get('cpu_us_per_event'))} µs CPU/event"


def stream_rows(doc: dict) -> list[tuple[str, str, str]]:
    """(figure, value, the parameters and same-run comparison behind it) for a table."""
    f, d, r = doc["figures"], doc["details"], doc["ratios"]
    t = d["throughput"]
    stream = d["stream"]
    events = (
        f"{d['published']['events']:,} events ({stream['pairs']:,} pairs, seed {stream['seed']})"
    )
    spend = f"{d['published']['spend_events']:,} spend events"
    lat = d["latency"]["params"]
    bg = lat.get("background") or {}
    under = f"{lat['stakes']} stakes under {_fmt(bg.get('rate'))} bg events/s"
    quix = t["quix"]
    rows = [
        (
            "worker_events_per_s",
            _fmt(f["worker_events_per_s"]),
            f"{events}; ×{_fmt(r['worker_vs_quix'])} quix, ×{_fmt(r['worker_vs_faust_naive'])} "
            f"faust, ×{_fmt(r['worker_vs_raw_consumer'])} raw; {_cores(t['worker'])}, "
            f"×{_fmt(r.get('worker_vs_quix_per_cpu_s'))} quix per CPU-second",
        ),
        (
            "raw_consumer_events_per_s",
            _fmt(f["raw_consumer_events_per_s"]),
            f"{events}, JSON decode only",
        ),
        ("faust_naive_events_per_s", _fmt(f["faust_naive_events_per_s"]), f"{spend}, table sum"),
        (
            "quix_events_per_s",
            _fmt(f["quix_events_per_s"]),
            f"{spend}, stateful sum; {_cores(quix)}"
            if quix["value"]
            else f"not run: {quix.get('reason')}",
        ),
    ]
    for name in STREAM_FIGURES[4:10]:
        rows.append((name, _fmt(f[name]), under))
    rec = d["recovery"]["params"]
    rows.append(
        (
            "recovery_s",
            _fmt(f["recovery_s"]),
            f"kill -9 → ready; state of {rec['state_events']:,} events, "
            f"{rec['tail_after_snapshot']:,} replayed",
        )
    )
    rows += rebuild_rows(f, d["rebuild"])
    return rows


def rebuild_rows(f: dict[str, Any], rebuild: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The rebuild figures' rows: time, rate, ratio to read-and-parse, memory."""
    events = f"{rebuild['params']['events']:,} events"
    floor = _fmt(rebuild["params"]["read_parse_events_per_s"])
    return [
        ("rebuild_s", _fmt(f["rebuild_s"]), f"{events}, spawn → ready"),
        ("rebuild_events_per_s", _fmt(f["rebuild_events_per_s"]), f"{events} / rebuild_s"),
        (
            "rebuild_vs_read_parse",
            _fmt(f["rebuild_vs_read_parse"]),
            f"rebuild_events_per_s / {floor} events/s (orjson.loads of the same lines, same run)",
        ),
        ("rebuild_peak_rss_mb", _fmt(f["rebuild_peak_rss_mb"]), "the rebuilding worker's VmHWM"),
    ]


def run_bench(
    *,
    quick: bool,
    engine: bool = True,
    stream: bool = True,
    hostile: bool = False,
    broker: str | None = None,
    json_path: Path | None = None,
    rebuild_events: int | None = None,
) -> dict:
    """`stakewatch bench`: the engine figures (`streams.bench.engine`) and the stream figures, one
    table and one JSON document whose `figures` object holds both."""
    from rich.console import Console
    from rich.table import Table

    err = Console(stderr=True)

    def say(message: str) -> None:
        err.print(f"[dim]… {message}[/dim]", highlight=False)

    from streams import hot

    # which build of the hot path ran (setup.py): the workers are this install's too
    doc: dict[str, Any] = {"figures": {}, "details": {}, "targets": TARGETS, "build": hot.build()}
    rows: list[tuple[str, str, str]] = []
    if engine:
        from streams.bench.engine import engine_figures, figure_rows

        engine_doc = engine_figures(quick, progress=say)
        doc["figures"].update(engine_doc["figures"])
        doc["details"].update(engine_doc["details"])
        doc["peak_rss_mb"] = engine_doc.get("peak_rss_mb")
        rows += figure_rows(engine_doc)
    if stream:
        stream_doc = stream_figures(quick, broker=broker, progress=say)
        doc["figures"].update(stream_doc["figures"])
        doc["details"]["stream"] = stream_doc["details"]
        doc["ratios"] = stream_doc["ratios"]
        doc["figure_details"] = stream_doc["figure_details"]
        doc["run"] = stream_doc["run"]
        rows += stream_rows(stream_doc)
    if rebuild_events is not None:
        from streams.bench.rebuild import rebuild_figures, rebuild_table_rows

        rebuild_doc = rebuild_figures(rebuild_events, broker=broker, progress=say)
        doc["figures"].update(rebuild_doc["figures"])
        doc["details"]["rebuild"] = rebuild_doc["details"]["rebuild"]
        doc["run"] = rebuild_doc["run"]
        rows += rebuild_table_rows(rebuild_doc)
    targets = dict(TARGETS)
    if hostile:
        from streams.bench.hostile import hostile_figures, hostile_rows

        hostile_doc = hostile_figures(quick, broker=broker, progress=say)
        doc["figures"].update(hostile_doc["figures"])
        doc["details"]["hostile"] = hostile_doc["details"]
        for name, value, target, where in hostile_rows(hostile_doc):
            rows.append((name, value, where))
            targets[name] = target
    title = "stakewatch bench" + (" --quick" if quick else "")
    table = Table(title=f"{title} (hot path: {doc['build']})")
    for column, justify in (("figure", "left"), ("value", "right"), ("target", "left")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    table.add_column("parameters, same-run comparison")
    for name, value, where in rows:
        table.add_row(name, value, targets.get(name, ""), where)
    out = Console()
    if not out.is_terminal:  # a pipe or a CI log: room for the parameters column
        out = Console(width=160)
    out.print(table)
    if json_path is not None:
        json_path.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n")
    return doc
