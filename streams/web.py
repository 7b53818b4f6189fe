"""The worker's HTTP surface (aiohttp): health, readiness and Prometheus metrics.

One small app so the API (``/v1``) and the live page can be added beside it; it binds to
127.0.0.1 unless told otherwise, because it shows who depends on whom.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from streams.agents.worker import Worker
    from streams.metrics import Metrics

__all__ = ["build_app"]


def build_app(worker: Worker, metrics: Metrics | None) -> web.Application:
    app = web.Application()
    app["worker"] = worker

    async def healthz(request: web.Request) -> web.Response:
        if worker.failure is not None:
            return web.json_response({"status": "failed", "error": str(worker.failure)}, status=500)
        return web.json_response({"status": "ok", "worker": worker.worker_id})

    async def readyz(request: web.Request) -> web.Response:
        ready = worker.ready.is_set()
        body = {
            "ready": ready,
            "worker": worker.worker_id,
            "leases": sorted(worker.leases),
            "applied": worker.counts["applied"],
            "snapshots": worker.counts["snapshots"],
            "restored": worker.restored,
        }
        return web.json_response(body, status=200 if ready else 503)

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    if metrics is not None:
        app.router.add_get("/metrics", metrics.aiohttp_handler())
    return app
