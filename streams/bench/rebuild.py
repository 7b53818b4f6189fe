"""`stakewatch bench --rebuild-events N`: the rebuild figure alone, at a size the user picks.

A large client's years of spend is tens of millions of events (issue 18); the full bench's
rebuild replays 1,020,000. This run generates N events, publishes them in chunks (timing
`orjson.loads` over each chunk first: the floor the ratio is taken against, on the same
lines), writes a reset marker and times a fresh `stakewatch worker` from spawn to ready,
reading its peak RSS before stopping it. The embedded broker keeps every record in memory:
10M generated events take it about 4 GB.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from streams.bench.floor import parse_seconds
from streams.bench.generate import StreamParams, generate
from streams.bench.stream import (
    Progress,
    _WorkerProcess,
    publish_lines,
    rebuild_result,
    rebuild_rows,
)
from streams.kafka.topics import TopicNames

__all__ = ["rebuild_figures", "rebuild_table_rows"]

_CHUNK = 200_000


async def _rebuild(bootstrap: str, events: int, work: Path, say: Progress) -> dict[str, Any]:
    from streams.kafka.rebuild import request_rebuild

    run = f"rebuild-{uuid.uuid4().hex[:6]}"
    names = TopicNames(run)
    params = StreamParams(events=events)
    say(f"generating and publishing {events:,} events (seed {params.seed}) in chunks")
    parsed, parse_s, published = 0, 0.0, 0
    chunk: list[bytes] = []

    async def flush() -> None:
        nonlocal parsed, parse_s, published
        n, seconds = parse_seconds(chunk)
        parsed, parse_s = parsed + n, parse_s + seconds
        published += (await publish_lines(bootstrap, names, chunk))["events"]
        chunk.clear()

    for line in generate(params):
        chunk.append(line)
        if len(chunk) >= _CHUNK:
            await flush()
            say(f"published {published:,}")
    if chunk:
        await flush()
    say("rebuild: reset marker, then a fresh worker replays every event")
    await request_rebuild(bootstrap, names)
    worker = _WorkerProcess(bootstrap, names.prefix, f"{run}-worker", work / "worker-rebuild.log")
    try:
        ready_at, status = await worker.wait(
            lambda s: s.get("ready"), max(1800.0, events / 5_000), "ready", interval=0.5
        )
        result = rebuild_result(worker, ready_at, status, parsed / parse_s if parse_s else None)
    finally:
        worker.stop()
    result["params"]["stream"] = params.describe()
    result["params"]["published"] = published
    return result


def rebuild_figures(
    events: int, broker: str | None = None, progress: Progress = lambda _: None
) -> dict[str, Any]:
    """The rebuild figures for ``events`` generated events, on ``broker`` or an embedded one."""
    from streams.kafka.broker import run_broker

    work = Path(tempfile.mkdtemp(prefix="stakewatch-rebuild-"))
    started = time.perf_counter()
    with run_broker(broker, work) as bootstrap:
        rebuild = asyncio.run(_rebuild(bootstrap, events, work, progress))
    return {
        "figures": {
            "rebuild_s": rebuild["value"],
            "rebuild_events_per_s": rebuild["events_per_s"],
            "rebuild_vs_read_parse": rebuild["vs_read_parse"],
            "rebuild_peak_rss_mb": rebuild["peak_rss_mb"],
        },
        "details": {"rebuild": rebuild},
        "run": {
            "seconds": round(time.perf_counter() - started, 1),
            "cpus": os.cpu_count(),
            "work_dir": str(work),
        },
    }


def rebuild_table_rows(doc: dict[str, Any]) -> list[tuple[str, str, str]]:
    return rebuild_rows(doc["figures"], doc["details"]["rebuild"])
