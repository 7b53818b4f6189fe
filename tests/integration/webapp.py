"""The worker's web app on a loopback port for tests that talk HTTP to an in-process worker."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from streams.agents.worker import Worker
from streams.api.auth import Access
from streams.kafka.broker import free_port
from streams.web import build_app

__all__ = ["serving"]


@contextlib.asynccontextmanager
async def serving(
    worker: Worker, *, api_token: str | None = None, access: Access | None = None
) -> AsyncIterator[str]:
    """Serve ``build_app(worker)`` on 127.0.0.1; yields the base URL."""
    app = build_app(worker, None, api_token=api_token, access=access)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
