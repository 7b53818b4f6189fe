"""``stakewatch worker``: the worker, its web port and signal handling in one process."""

from __future__ import annotations

import asyncio
import contextlib
import signal

import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry

from streams.agents.worker import Worker, WorkerOptions
from streams.metrics import Metrics
from streams.web import build_app

__all__ = ["serve"]

log = structlog.get_logger("stakewatch.worker")


async def serve(
    options: WorkerOptions,
    *,
    web_host: str = "127.0.0.1",
    web_port: int | None = 6066,
    stop: asyncio.Event | None = None,
) -> int:
    """Run until SIGTERM/SIGINT (or ``stop``); returns the process exit code."""
    metrics = Metrics(CollectorRegistry())
    worker = Worker(options, metrics)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    runner = None
    if web_port is not None:
        runner = web.AppRunner(build_app(worker, metrics), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, web_host, web_port)
        await site.start()
        log.info("web listening", host=web_host, port=web_port)
    try:
        await worker.start()
        stopped = asyncio.create_task(stop.wait())
        done = asyncio.create_task(worker.wait())
        await asyncio.wait({stopped, done}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        done.cancel()
    finally:
        await worker.stop()
        if runner is not None:
            await runner.cleanup()
    return 1 if worker.failure is not None else 0
