"""The contenders of `stakewatch bench`'s stream figures, each run in its own interpreter.

`python -m streams.bench.peers KIND '{json args}'` runs one of them and prints one JSON
line with wall-clock (`time.time()`) stamps, so the parent compares processes on one clock:

- `worker`: the real `Worker` (with the `Metrics` and logging `stakewatch worker` uses),
  reading the pre-published stream from offset 0 until every record is applied or rejected.
- `raw`: a group-less aiokafka consumer that only decodes JSON: the ceiling for any Python
  consumer on this broker.
- `faust`: a plain faust-streaming agent doing `table[client] += amount` per event, the
  design the faust docs lead to (the naive peer).
- `quix`: a Quix Streams app doing the same sum in its per-key RocksDB state.
- `spend_load`: a paced producer of live spend events (the background of the alert
  latency figure), so its CPU is not charged to the measuring process.

Each contender runs in a fresh process so that none inherits another's heap, threads or
event loop; the peers also need their own process because faust and Quix own the loop.
Throughput is counted from the first record processed (group joins are not the design under
test; they are reported as `wall_s` beside it). Each also reports its process CPU time
(`time.process_time()`: every thread, so librdkafka's too) over the same span.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sys
import time
from pathlib import Path
from typing import Any

import orjson

__all__ = ["main"]


def _emit(doc: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(doc) + "\n")
    sys.stdout.flush()


# -- the worker ---------------------------------------------------------------------------


async def _worker(args: dict[str, Any]) -> dict[str, Any]:
    """Count from the first poll that sees a record applied: the worker applies a fetched
    batch without yielding, so the rate is taken over the records applied after that poll
    (exact, whatever the batch size), not from an earlier guess of when it began."""
    from prometheus_client import CollectorRegistry

    from streams.agents.runner import tune_gc
    from streams.agents.snapshot_key import SnapshotKey
    from streams.agents.worker import Worker, WorkerOptions
    from streams.kafka.topics import TopicNames
    from streams.logging import configure_logging
    from streams.metrics import Metrics

    configure_logging()
    started = time.time()
    # Snapshots as `stakewatch worker` writes them (the run's key, which `stakewatch bench`
    # sets): their cost is part of the throughput, and the recovery figure restores the
    # last one. Without the key the worker would write none and the recovery worker would
    # replay what its predecessor snapshotted instead of the 20,000-event tail.
    secret = os.environ.get("STAKEWATCH_SNAPSHOT_KEY")
    options = WorkerOptions(
        args["bootstrap"],
        names=TopicNames(args["prefix"]),
        group_id=args["group"],
        snapshot_key=SnapshotKey(secret.encode()) if secret else None,
        **args.get("options", {}),
    )
    tune_gc()  # as `stakewatch worker` (streams.agents.runner.serve) does
    worker = Worker(options, Metrics(CollectorRegistry()))
    expected = args["expected"]
    await worker.start()
    await worker.assigned.wait()
    assigned = time.time()
    first_at, first_count, cpu_first = None, 0, None
    deadline = time.monotonic() + args.get("timeout", 1800)
    while True:
        done = worker.counts["applied"] + worker.counts["rejected"]
        now = time.time()
        if first_at is None and done:
            first_at, first_count, cpu_first = now, done, time.process_time()
        if done >= expected or worker.failure is not None or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.002)
    finished, cpu_done = time.time(), time.process_time()
    stop_started = time.perf_counter()
    await worker.stop()  # writes the final snapshot the recovery figure restores
    engine = worker.engine
    return {
        "started": started,
        "assigned": assigned,
        "first": first_at,
        "first_count": first_count,
        "done": finished,
        "cpu_first": cpu_first,
        "cpu_done": cpu_done,
        "processed": done,
        "counts": dict(worker.counts),
        "failure": None if worker.failure is None else repr(worker.failure),
        "stop_s": round(time.perf_counter() - stop_started, 3),
        "state": {
            "event_ids": len(engine.seen),
            "contracts": len(engine.rel.contracts),
            "holdings": len(engine.graph.holdings),
            "open_conflicts": len(engine.open),
        },
    }


# -- the ceiling --------------------------------------------------------------------------


async def _raw(args: dict[str, Any]) -> dict[str, Any]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    started = time.time()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=args["bootstrap"],
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=100,
        max_partition_fetch_bytes=1024 * 1024,
    )
    await consumer.start()
    try:
        await consumer.topics()
        partitions = [
            TopicPartition(t, p)
            for t in args["topics"]
            for p in sorted(consumer.partitions_for_topic(t) or ())
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        expected = args["expected"]
        loads = orjson.loads
        seen = first_count = 0
        first = cpu_first = None
        deadline = time.monotonic() + args.get("timeout", 600)
        while seen < expected and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200, max_records=10_000)
            for records in batch.values():
                for r in records:
                    loads(r.value)
                seen += len(records)
            if first is None and seen:
                first, first_count = time.time(), seen  # as for the worker: after one batch
                cpu_first = time.process_time()
        return {
            "started": started,
            "first": first,
            "first_count": first_count,
            "done": time.time(),
            "cpu_first": cpu_first,
            "cpu_done": time.process_time(),
            "processed": seen,
        }
    finally:
        await consumer.stop()


# -- the naive faust peer -----------------------------------------------------------------


def _faust(args: dict[str, Any]) -> None:
    """`table[client] += amount` per event, settings from docs/notes-faust-tansu.md: the
    6 s / 1 s session (a 4 s join on Tansu instead of 31 s) and at-least-once (exactly-once
    cannot start on Tansu). Progress goes to a file: faust owns stdout and the loop."""
    import faust

    out = Path(args["out"])
    expected = args["expected"]
    app = faust.App(
        args["app_id"],
        broker=f"kafka://{args['bootstrap']}",
        store="memory://",
        datadir=args["datadir"],
        web_enabled=False,
        topic_partitions=8,
        topic_disable_leader=True,
        broker_session_timeout=6,
        broker_heartbeat_interval=1,
        processing_guarantee="at_least_once",
        consumer_auto_offset_reset="earliest",
    )
    topic = app.topic(args["topic"], key_serializer="raw", value_serializer="json")
    table = app.Table("spend-sum", default=float, partitions=8)
    state: dict[str, Any] = {"count": 0, "first": None, "sum": 0.0}

    @app.agent(topic)
    async def total(stream):  # the per-event path the issue calls "naive"
        async for key, value in stream.items():
            amount = value["data"]["amount"]
            table[key.decode()] += amount
            state["count"] += 1
            state["sum"] += amount
            if state["first"] is None:
                state["first"] = time.time()
            if state["count"] == expected:
                done = {"first": state["first"], "done": time.time(), "processed": expected}
                _write(out, {**done, "sum": state["sum"], "table_keys": len(table)})

    worker = faust.Worker(
        app, loglevel="WARNING", quiet=True, override_logging=False, redirect_stdouts=False
    )
    worker.execute_from_commandline()


def _write(path: Path, doc: dict[str, Any]) -> None:
    path.write_text(json.dumps(doc))


# -- the Quix Streams peer ----------------------------------------------------------------


def _quix(args: dict[str, Any]) -> dict[str, Any]:
    """The same sum in Quix's per-key state (RocksDB, changelog written per key at each
    checkpoint); the session is shortened as for faust, else Tansu holds the join 22 s."""
    from quixstreams import Application

    expected = args["expected"]
    started = time.time()
    app = Application(
        broker_address=args["bootstrap"],
        consumer_group=args["group"],
        auto_offset_reset="earliest",
        state_dir=args["state_dir"],
        loglevel="WARNING",
        consumer_extra_config={"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000},
    )
    topic = app.topic(args["topic"], value_deserializer="json", key_deserializer="str")
    progress: dict[str, Any] = {
        "count": 0,
        "first": None,
        "done": None,
        "sum": 0.0,
        "cpu_first": None,
        "cpu_done": None,
    }

    def add(value: dict, state) -> None:
        amount = value["data"]["amount"]
        state.set("sum", state.get("sum", 0.0) + amount)
        progress["count"] += 1
        progress["sum"] += amount
        if progress["first"] is None:
            progress["first"] = time.time()
            progress["cpu_first"] = time.process_time()
        if progress["count"] >= expected and progress["done"] is None:
            progress["done"] = time.time()
            progress["cpu_done"] = time.process_time()
            app.stop()

    sdf = app.dataframe(topic)
    sdf.update(add, stateful=True)
    app.run()
    return {
        "started": started,
        "first": progress["first"],
        "done": progress["done"],
        "cpu_first": progress["cpu_first"],
        "cpu_done": progress["cpu_done"],
        "processed": progress["count"],
        "sum": progress["sum"],
    }


# -- the background load of the latency figure --------------------------------------------


async def _spend_load(args: dict[str, Any]) -> dict[str, Any]:
    """Live spend at `rate` events/s (sent every 10 ms) on `pairs` fresh client–vendor pairs
    with no rival and no contract, stamped now: traffic the worker must merge and apply
    but that opens nothing, so every alert record of the run is one of the injected ones."""
    from aiokafka import AIOKafkaProducer

    rate, seconds = args["rate"], args["seconds"]
    pairs = args.get("pairs", 10_000)
    rng = random.Random(args.get("seed", 5))
    producer = AIOKafkaProducer(bootstrap_servers=args["bootstrap"], linger_ms=5)
    await producer.start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    sent = 0
    tick = 0.01
    start = time.monotonic()
    try:
        while (elapsed := time.monotonic() - start) < seconds and not stop.is_set():
            due = int((elapsed + tick) * rate)
            now_ms = time.time_ns() // 1_000_000
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now_ms / 1000))
            stamp += f".{now_ms % 1000:03d}000Z"
            while sent < due:
                pair = rng.randrange(pairs)
                client = f"bg-client-{pair % 2000}"
                body = {
                    "specversion": "1.0",
                    "id": f"bg-{sent}",
                    "source": f"/erp/{client}",
                    "type": "spend.recorded",
                    "time": stamp,
                    "data": {
                        "client": client,
                        "vendor": f"bg-vendor-{pair}",
                        "amount": round(rng.uniform(1e3, 1e5), 2),
                    },
                }
                await producer.send(
                    args["topic"], orjson.dumps(body), key=client.encode(), timestamp_ms=now_ms
                )
                sent += 1
            await asyncio.sleep(max(0.0, start + (sent / rate) - time.monotonic()))
        await producer.flush()
    finally:
        await producer.stop()
    elapsed = time.monotonic() - start
    return {"sent": sent, "seconds": round(elapsed, 3), "rate": round(sent / elapsed)}


def main(argv: list[str] | None = None) -> None:
    kind, raw = (argv or sys.argv[1:])[:2]
    args = json.loads(raw)
    if kind == "faust":
        _faust(args)  # ends in SystemExit from faust's worker
        return
    if kind == "quix":
        _emit(_quix(args))
        return
    runners = {"worker": _worker, "raw": _raw, "spend_load": _spend_load}
    _emit(asyncio.run(runners[kind](args)))
    os._exit(0)  # skip interpreter teardown of a big heap: its cost is not the figure's


if __name__ == "__main__":
    main()
