"""`stakewatch bench --hostile`: what a broken or hostile ownership feed costs (SPEC v2 §2).

`--quick` runs smaller feeds of the same shapes (a 12-entity mesh, a 300-holding chain, a
600-event world).

Two feeds (`streams.bench.generate`), each followed by the seed scenario:

- **mesh-and-chain**: 30 entities each holding 90 % of every other, and a chain of 3,000
  holdings at 100 %, hung under meta and into scale-ai (3,873 ownership events);
- **over-allocated world**: 3,000 random events among 200 entities in which the median
  asset is claimed about 500 % (the hottest vendors many thousand %), dense with cycles.

Offline, each goes through `run_backtest` in a fresh interpreter (so that peak RSS is the
feed's): wall time, peak RSS, the slowest single event. Online, a `stakewatch worker` is fed
the feed, then the seed scenario event by event: the latency of each seed alert record from
the send of the event that caused it to its arrival on the alerts topic. Figures are
printed beside the targets, never asserted (docs/performance.md, "Hostile input").
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

from streams.bench.generate import mesh_and_chain, overallocated_world

__all__ = ["FEEDS", "HOSTILE_TARGETS", "hostile_figures", "hostile_rows", "offline_figures"]

SEED = Path(__file__).resolve().parents[1] / "scenarios" / "scale-ai-2025.ndjson"

FEEDS: dict[str, Callable[[bool], Iterator[bytes]]] = {  # (quick) -> lines
    "mesh_and_chain": lambda quick: mesh_and_chain(12, 300) if quick else mesh_and_chain(),
    "overallocated_world": lambda quick: overallocated_world(600 if quick else 3000),
}

HOSTILE_TARGETS = {
    "backtest_s": "≤ 10",
    "peak_rss_mb": "≤ 1,000",
    "seed_alert_latency_p99_ms": "≤ 1,000",
}


def _lines(feed: str, quick: bool) -> list[bytes]:
    return [*FEEDS[feed](quick), *SEED.read_bytes().splitlines()]


def _peak_rss_mb() -> float:
    with open("/proc/self/status", "rb") as status:
        for line in status:
            if line.startswith(b"VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def offline_figures(feed: str, quick: bool = False) -> dict[str, Any]:
    """The feed plus the seed through `run_backtest`, in this process: seconds, peak RSS,
    the slowest event. Run it in a fresh interpreter (`python -m streams.bench.hostile`)."""
    from streams.backtest import iter_lines, run_backtest
    from streams.engine import Engine

    ndjson = b"".join(line + b"\n" for line in _lines(feed, quick))
    engine = Engine()
    slowest = [0.0, 0]  # seconds, line number

    def timed(lines: Iterator[tuple[int, bytes]]) -> Iterator[tuple[int, bytes]]:
        """Each line's processing time: from handing it over to being asked for the next
        (the same path as `stakewatch backtest`, nothing patched into the engine)."""
        for number, raw in lines:
            started = time.perf_counter()
            yield number, raw
            took = time.perf_counter() - started
            if took > slowest[0]:
                slowest[0], slowest[1] = took, number

    records = 0

    def emit(_: object) -> None:
        nonlocal records
        records += 1

    now = time.time_ns() // 1000
    started = time.perf_counter()
    summary = run_backtest(engine, timed(iter_lines(io.BytesIO(ndjson))), emit, now=now)
    seconds = time.perf_counter() - started
    graph = engine.graph
    return {
        "backtest_s": round(seconds, 2),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        "slowest_event_ms": round(slowest[0] * 1000, 1),
        "params": {
            "events": summary.read,
            "applied": summary.applied,
            "alert_records": records,
            "holdings": len(graph.holdings),
            "overallocated_assets": len(graph.overallocated),
            "open_conflicts": len(engine.open),
            "slowest_event_line": slowest[1],
        },
    }


def _offline_in_child(feed: str, quick: bool) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "streams.bench.hostile", feed, *(["--quick"] if quick else [])],
        capture_output=True,
        timeout=1800,
        check=False,
    )
    if done.returncode != 0:
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-3:]
        raise RuntimeError(f"hostile backtest of {feed} failed: {' / '.join(tail)}")
    return json.loads(done.stdout.decode().strip().splitlines()[-1])


async def _worker_latency(bootstrap: str, feed: str, quick: bool, work: Path) -> dict[str, Any]:
    """A worker fed `feed`, then the seed scenario event by event (20 ms apart): each seed
    alert record's latency from the send of its event to the alerts topic."""
    from aiokafka import TopicPartition

    from streams.bench.stream import _route, _WorkerProcess, percentiles, publish_lines
    from streams.kafka.clients import make_consumer, make_producer
    from streams.kafka.topics import TopicNames

    run = f"bench-hostile-{feed.replace('_', '-')}-{int(time.time())}"
    names = TopicNames(run)
    hostile = list(FEEDS[feed](quick))
    published = await publish_lines(bootstrap, names, hostile)
    worker = _WorkerProcess(bootstrap, run, f"{run}-g", work / f"worker-{feed}.log")
    producer = make_producer(bootstrap, linger_ms=0)
    consumer = make_consumer(bootstrap, enable_auto_commit=False, fetch_max_wait_ms=10)
    sent: dict[str, float] = {}
    arrived: dict[str, float] = {}
    got = asyncio.Event()
    try:
        started = time.time()
        total = published["events"]
        ready_at, _ = await worker.wait(
            lambda s: s.get("ready") and s.get("applied", 0) + s.get("rejected", 0) >= total,
            900,
            "the hostile feed applied",
            interval=0.2,
        )
        await producer.start()
        await consumer.start()
        tp = TopicPartition(names.alerts, 0)
        consumer.assign([tp])
        await consumer.seek_to_end(tp)

        async def read_alerts() -> None:
            while True:
                batch = await consumer.getmany(timeout_ms=100, max_records=1000)
                now = time.time()
                for records in batch.values():
                    for r in records:
                        arrived.setdefault(orjson.loads(r.value)["event_id"], now)
                        got.set()

        reader = asyncio.create_task(read_alerts())
        for raw in SEED.read_bytes().splitlines():
            topic, key, stamp, doc = _route(raw, names)
            sent[doc["id"]] = time.time()
            await producer.send_and_wait(topic, raw, key=key, timestamp_ms=stamp)
            await asyncio.sleep(0.02)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # until no record arrived for 3 s
            got.clear()
            try:
                await asyncio.wait_for(got.wait(), 3)
            except TimeoutError:
                break
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
    finally:
        worker.stop()
        with contextlib.suppress(Exception):
            await consumer.stop()
        with contextlib.suppress(Exception):
            await producer.stop()
    latencies = [(arrived[e] - sent[e]) * 1000 for e in arrived if e in sent]
    return {
        "seed_alert_latency_ms": {**percentiles(latencies), "samples": len(latencies)},
        "feed_applied_s": round(ready_at - started, 1),
        "params": {"hostile_events": total, "seed_events": len(sent), "spacing_ms": 20},
    }


def hostile_figures(
    quick: bool = False,
    broker: str | None = None,
    progress: Callable[[str], None] = lambda _: None,
    work_dir: Path | None = None,
) -> dict[str, Any]:
    """Both feeds offline (fresh interpreters) and through a worker on one broker."""
    from streams.kafka.broker import run_broker

    work = work_dir or Path(tempfile.mkdtemp(prefix="stakewatch-hostile-"))
    work.mkdir(parents=True, exist_ok=True)
    details: dict[str, Any] = {}
    for feed in FEEDS:
        progress(f"hostile input: {feed} through backtest (fresh interpreter)")
        details[feed] = {"offline": _offline_in_child(feed, quick)}
    with run_broker(broker, work) as bootstrap:
        for feed in FEEDS:
            progress(f"hostile input: {feed} through a worker, then the seed scenario")
            details[feed]["worker"] = asyncio.run(_worker_latency(bootstrap, feed, quick, work))
    figures = {}
    for feed, d in details.items():
        figures[f"hostile_{feed}_backtest_s"] = d["offline"]["backtest_s"]
        figures[f"hostile_{feed}_peak_rss_mb"] = d["offline"]["peak_rss_mb"]
        figures[f"hostile_{feed}_slowest_event_ms"] = d["offline"]["slowest_event_ms"]
        figures[f"hostile_{feed}_seed_alert_p99_ms"] = d["worker"]["seed_alert_latency_ms"]["p99"]
    return {"figures": figures, "details": details}


def hostile_rows(doc: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(figure, value, target, parameters) per hostile figure, for the bench table."""
    rows = []
    for feed, d in doc["details"].items():
        off, online = d["offline"], d["worker"]
        p = off["params"]
        what = (
            f"{p['events']:,} events, {p['holdings']:,} holdings, "
            f"{p['overallocated_assets']:,} over-allocated"
        )
        lat = online["seed_alert_latency_ms"]
        rows += [
            (f"hostile_{feed}_backtest_s", f"{off['backtest_s']:,.2f}", "≤ 10", what),
            (f"hostile_{feed}_peak_rss_mb", f"{off['peak_rss_mb']:,.0f}", "≤ 1,000", what),
            (
                f"hostile_{feed}_slowest_event_ms",
                f"{off['slowest_event_ms']:,.1f}",
                "",
                f"line {p['slowest_event_line']:,}",
            ),
            (
                f"hostile_{feed}_seed_alert_p99_ms",
                "—" if lat["p99"] is None else f"{lat['p99']:,.0f}",
                "≤ 1,000",
                f"{lat['samples']} seed alerts after the feed (applied in "
                f"{online['feed_applied_s']} s by the worker)",
            ),
        ]
    return rows


if __name__ == "__main__":
    print(json.dumps(offline_figures(sys.argv[1], quick="--quick" in sys.argv)))
