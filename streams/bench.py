"""`stakewatch bench --engine`: the engine's own figures, measured in one run.

Each figure carries the parameters that produced it. No thresholds are asserted here: the
targets live in the issue tracker and in docs/performance.md, the figures are printed.
"""

from __future__ import annotations

import gc
import resource
import statistics
import time
from collections.abc import Callable
from typing import Any

from streams.engine import Engine
from streams.generate import StreamParams, generate, ownership_graph

__all__ = ["engine_figures"]


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def engine_throughput(events: int, seed: int = 7) -> dict[str, Any]:
    """Events/s through decode + apply (what `backtest` does per line) on a mixed stream."""
    params = StreamParams(events=events, seed=seed)
    lines = list(generate(params))
    engine = Engine()
    process = engine.process
    records = 0
    gc.collect()
    start = time.perf_counter()
    for raw in lines:
        records += len(process(raw).records)
    elapsed = time.perf_counter() - start
    return {
        "value": round(events / elapsed),
        "unit": "events/s",
        "params": {**params.describe(), "alert_records": records, "seconds": round(elapsed, 2)},
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


def engine_figures(quick: bool, progress: Callable[[str], None] = lambda _: None) -> dict:
    events = 100_000 if quick else 1_000_000
    progress(f"engine throughput on {events:,} generated events")
    throughput = engine_throughput(events)
    sizes = [(100_000, 100_000)] if quick else [(100_000, 100_000), (1_000_000, 1_000_000)]
    ownership = {}
    for entities, holdings in sizes:
        progress(f"ownership event cost on a {entities:,}-entity graph")
        ownership[str(entities)] = ownership_event_cost(entities, holdings)
    largest = ownership[str(sizes[-1][0])]
    per_million = largest["graph_rss_mb"] / (sizes[-1][1] / 1_000_000)
    return {
        "figures": {
            "engine_events_per_s": throughput["value"],
            "ownership_event_p50_ms": largest["p50_ms"],
            "ownership_event_p99_ms": largest["p99_ms"],
            "rss_mb_per_million": round(per_million, 1),
        },
        "details": {"engine_throughput": throughput, "ownership_event": ownership},
        "peak_rss_mb": round(_rss_mb(), 1),
    }
