"""`stakewatch bench --engine`: the engine's own figures, measured in one run.

Each figure carries the parameters that produced it. No thresholds are asserted here: the
targets live in the issue tracker and in docs/performance.md, the figures are printed.

Memory figures come from a fresh interpreter each (peak RSS is a high-water mark: measured in
this process it would also hold whatever an earlier figure left behind), as do the
ownership-event latencies on large graphs (so that they do not run on a heap the throughput
run has churned).
"""

from __future__ import annotations

import gc
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from streams.backtest import iter_lines, run_backtest
from streams.bench.floor import read_parse
from streams.bench.generate import StreamParams, generate, ownership_graph, state_stream
from streams.engine import AlertRecord, Engine

__all__ = [
    "engine_figures",
    "engine_throughput",
    "figure_rows",
    "ownership_event_cost",
    "state_rss",
]


def _rss_mb() -> float:
    """Peak RSS of this process so far, in MB.

    On Linux, the current address space's high-water mark (VmHWM): `ru_maxrss` survives
    exec, so a child interpreter would start from the parent's peak.
    """
    try:
        with open("/proc/self/status", "rb") as status:
            for line in status:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def engine_throughput(events: int, seed: int = 7) -> dict[str, Any]:
    """Events/s through the backtest path on a mixed stream: the NDJSON is generated into
    memory first, then `run_backtest` reads it line by line and hands each line to
    `Engine.process` (decode, validate, apply, evaluate) — `stakewatch backtest` minus the
    disk. Beside it, the floor (`streams.bench.floor`): reading and parsing the same bytes,
    before and after the backtest, the faster pass kept."""
    params = StreamParams(events=events, seed=seed)
    ndjson = b"".join(line + b"\n" for line in generate(params))
    engine = Engine()
    records = 0

    def emit(_: AlertRecord) -> None:
        nonlocal records
        records += 1

    floor = read_parse(ndjson, rounds=1)
    gc.collect()
    start, cpu = time.perf_counter(), time.process_time()
    summary = run_backtest(engine, iter_lines(io.BytesIO(ndjson)), emit)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    after = read_parse(ndjson, rounds=1)
    if after["params"]["seconds"] < floor["params"]["seconds"]:
        floor = after
    floor["params"]["rounds"] = 2
    rate = events / elapsed
    return {
        "value": round(rate),
        "read_parse": floor,
        "vs_read_parse": float(f"{rate / floor['value']:.4g}") if floor["value"] else None,
        "unit": "events/s",
        "params": {
            **params.describe(),
            "path": "run_backtest over in-memory NDJSON",
            "applied": summary.applied,
            "alert_records": records,
            "seconds": round(elapsed, 2),
            "cpu_seconds": round(cpu, 2),
        },
    }


def ownership_event_cost(entities: int, holdings: int, probes: int = 400) -> dict[str, Any]:
    """Latency of one ownership event on a graph of `entities`, median and p99."""
    engine = Engine()
    rss_before = _rss_mb()
    for raw in ownership_graph(entities, holdings):
        engine.process(raw)
    rss_after = _rss_mb()
    probe_lines = [
        raw.replace(b'"id":"gen-', b'"id":"probe-', 1).replace(b"2024-01-01T", b"2024-01-02T")
        for raw in ownership_graph(entities, probes, seed=99)
        if b'"ownership.stake"' in raw
    ]
    samples = []
    for raw in probe_lines:
        t0 = time.perf_counter()
        engine.process(raw)
        samples.append((time.perf_counter() - t0) * 1000)
    samples.sort()
    return {
        "p50_ms": round(statistics.median(samples), 3),
        "p99_ms": round(samples[int(len(samples) * 0.99) - 1], 3),
        "params": {"entities": entities, "holdings": holdings, "probes": len(samples)},
        "graph_rss_mb": round(rss_after - rss_before, 1),
    }


def state_rss(entities: int, holdings: int, contracts: int) -> dict[str, Any]:
    """Peak RSS of an engine holding `entities` registered entities, `holdings` holdings
    among them and `contracts` signed contracts (`generate.state_stream`), fed straight from
    the generator; call it in a fresh interpreter (`_isolated`) for a clean peak."""
    gc.collect()
    baseline = _rss_mb()
    engine = Engine()
    start = time.perf_counter()
    for raw in state_stream(entities, holdings, contracts):
        engine.process(raw)
    elapsed = time.perf_counter() - start
    peak = _rss_mb()
    unit = max(entities, holdings, contracts) / 1_000_000
    return {
        "peak_rss_mb": round(peak, 1),
        "state_mb": round(peak - baseline, 1),
        "per_million_mb": round((peak - baseline) / unit, 1),
        "params": {
            "entities": len(engine.entities),
            "holdings": len(engine.graph.holdings),
            "contracts": len(engine.rel.contracts),
            "events_applied": engine.stats["applied"],
            "scaled_to_million": round(1 / unit, 3),
            "baseline_rss_mb": round(baseline, 1),
            "seconds": round(elapsed, 1),
        },
    }


def _isolated(function: str, **kwargs: Any) -> dict[str, Any]:
    """Run `streams.bench.engine.<function>(**kwargs)` in a fresh interpreter; its result."""
    code = (
        "import json, sys; from streams.bench import engine as bench; "
        f"print(json.dumps(bench.{function}(**json.loads(sys.argv[1]))))"
    )
    root = str(Path(__file__).resolve().parents[2])
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])),
    }
    done = subprocess.run(
        [sys.executable, "-c", code, json.dumps(kwargs)],
        capture_output=True,
        check=True,
        env=env,
        text=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def engine_figures(quick: bool, progress: Callable[[str], None] = lambda _: None) -> dict:
    events = 100_000 if quick else 1_000_000
    progress(f"engine throughput on {events:,} generated events")
    throughput = engine_throughput(events)
    sizes = [(100_000, 100_000)] if quick else [(100_000, 100_000), (1_000_000, 1_000_000)]
    ownership = {}
    for entities, holdings in sizes:
        progress(f"ownership event cost on a {entities:,}-entity graph (fresh interpreter)")
        ownership[str(entities)] = _isolated(
            "ownership_event_cost", entities=entities, holdings=holdings
        )
    largest = ownership[str(sizes[-1][0])]
    per_million = largest["graph_rss_mb"] / (sizes[-1][1] / 1_000_000)
    size = 100_000 if quick else 1_000_000
    progress(
        f"peak RSS of {size:,} entities + {size:,} holdings + {size:,} contracts "
        "(fresh interpreter)"
    )
    state = _isolated("state_rss", entities=size, holdings=size, contracts=size)
    return {
        "figures": {
            "engine_events_per_s": throughput["value"],
            "read_parse_events_per_s": throughput["read_parse"]["value"],
            "backtest_vs_read_parse": throughput["vs_read_parse"],
            "ownership_event_p50_ms": largest["p50_ms"],
            "ownership_event_p99_ms": largest["p99_ms"],
            "rss_mb_per_million": round(per_million, 1),
            "state_rss_mb_per_million": state["per_million_mb"],
        },
        "details": {
            "engine_throughput": throughput,
            "ownership_event": ownership,
            "state_rss": state,
        },
        "peak_rss_mb": round(_rss_mb(), 1),
    }


def figure_rows(doc: dict) -> list[tuple[str, str, str]]:
    """(figure, value, the parameters that produced it) for each figure, for a table."""
    details = doc["details"]
    throughput = details["engine_throughput"]["params"]
    largest = list(details["ownership_event"].values())[-1]["params"]
    state = details["state_rss"]["params"]

    def describe(params: dict, keys: tuple[str, ...]) -> str:
        return ", ".join(
            f"{k}={params[k]:,}" if isinstance(params[k], int) else f"{k}={params[k]}"
            for k in keys
            if k in params
        )

    where = {
        "engine_events_per_s": describe(
            throughput, ("events", "pairs", "labs", "funds", "mix", "seed", "path")
        ),
        "read_parse_events_per_s": "the same NDJSON: iter_lines + orjson.loads, the faster "
        "of a pass before and one after the backtest",
        "backtest_vs_read_parse": "engine_events_per_s / read_parse_events_per_s, same run, "
        "same lines (1.0: a replay as cheap as parsing the file)",
        "ownership_event_p50_ms": describe(largest, ("entities", "holdings", "probes")),
        "ownership_event_p99_ms": describe(largest, ("entities", "holdings", "probes")),
        "rss_mb_per_million": describe(largest, ("entities", "holdings"))
        + " (graph only, per 1M holdings)",
        "state_rss_mb_per_million": describe(state, ("entities", "holdings", "contracts"))
        + f" (peak RSS growth, ×{state['scaled_to_million']} to 1M each)",
    }
    return [(name, f"{value:,}", where.get(name, "")) for name, value in doc["figures"].items()]
