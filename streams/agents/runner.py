"""``stakewatch worker``: the worker, the alert delivery agent (when receivers are
configured), the web port and signal handling in one process."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import sys
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry

from streams.agents.delivery import DeliveryAgent, DeliveryOptions
from streams.agents.worker import Worker, WorkerOptions
from streams.api.auth import Access
from streams.kafka.archive import Archive
from streams.metrics import Metrics
from streams.web import build_app

__all__ = ["serve"]

log = structlog.get_logger("stakewatch.worker")


def tune_gc() -> None:
    """Collector thresholds for a process that runs a worker (`serve`, the bench's worker
    peer; process-wide, so not the `Worker`'s to set). The worker's heap is millions of
    long-lived objects (the state) and a stream of short-lived ones (records). With
    CPython's defaults a young collection runs every 700 allocations and a full one often
    enough to rescan the state again and again; these thresholds cut the collector's share
    of the hot path (+8 % events/s on 1M events)."""
    gc.set_threshold(200_000, 50, 1000)


async def serve(
    options: WorkerOptions,
    *,
    web_host: str = "127.0.0.1",
    web_port: int | None = 6066,
    api_token: str | None = None,
    access: Access | None = None,
    stop: asyncio.Event | None = None,
    delivery: DeliveryOptions | None = None,
    broker_gone: Callable[[], Awaitable[bool]] | None = None,
    archive: Archive | None = None,
) -> int:
    """Run until SIGTERM/SIGINT (or ``stop``); returns the process exit code.

    ``broker_gone`` (embedded mode, shared broker): once it answers True the broker died,
    and its successor on the same port is refilled from the archive without the alerts
    and snapshots. Nothing of ours may write into a half-refilled broker (a notification
    log value written then can be overtaken by an older refilled one), and what it lost must
    be published again. So the process replaces itself with a fresh ``stakewatch worker``
    (exec, no graceful stop that would flush into it): that one waits for the refill
    (broker.lock), finds no snapshot, replays and reconciles (docs/reliability.md)."""
    tune_gc()
    metrics = Metrics(CollectorRegistry())
    worker = Worker(options, metrics)
    agent = DeliveryAgent(delivery, metrics) if delivery is not None else None
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    runner = None
    if web_port is not None:
        app = build_app(worker, metrics, api_token=api_token, access=access, archive=archive)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, web_host, web_port)
        await site.start()
        log.info("web listening", host=web_host, port=web_port)
    try:
        await worker.start()
        if agent is not None:
            await agent.start()
        waits = [stop.wait(), worker.wait(), *([agent.wait()] if agent else [])]
        if broker_gone is not None:
            waits.append(_until(broker_gone))
        tasks = [asyncio.create_task(w) for w in waits]
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        if broker_gone is not None and tasks[-1] in done:
            _restart_process()
        for task in tasks:
            task.cancel()
    finally:
        # The worker flushes its last alert records first; the agent drains what it holds.
        await worker.stop()
        if agent is not None:
            await agent.stop()
        if runner is not None:
            await runner.cleanup()
    failed = worker.failure is not None or (agent is not None and agent.failure is not None)
    return 1 if failed else 0


async def _until(gone: Callable[[], Awaitable[bool]], every: float = 0.2) -> None:
    """Poll ``gone`` (a file read and a connect on loopback) until it answers True."""
    while True:
        if await gone():
            return
        await asyncio.sleep(every)


def _restart_process() -> None:
    log.warning("embedded broker went away; restarting to reconnect once it is refilled")
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])
