"""``stakewatch worker``: the worker, the alert delivery agent (when receivers are
configured), the web port and signal handling in one process."""

from __future__ import annotations

import asyncio
import contextlib
import signal

import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry

from streams.agents.delivery import DeliveryAgent, DeliveryOptions
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
    api_token: str | None = None,
    stop: asyncio.Event | None = None,
    delivery: DeliveryOptions | None = None,
) -> int:
    """Run until SIGTERM/SIGINT (or ``stop``); returns the process exit code."""
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
        runner = web.AppRunner(build_app(worker, metrics, api_token=api_token), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, web_host, web_port)
        await site.start()
        log.info("web listening", host=web_host, port=web_port)
    try:
        await worker.start()
        if agent is not None:
            await agent.start()
        waits = [stop.wait(), worker.wait(), *([agent.wait()] if agent else [])]
        tasks = [asyncio.create_task(w) for w in waits]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
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
