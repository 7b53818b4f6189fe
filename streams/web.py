"""The worker's HTTP surface (aiohttp): health, readiness, metrics, the API and the page.

It binds to 127.0.0.1 unless told otherwise, because it shows who depends on whom. With API
tokens, ``/v1`` needs ``Authorization: Bearer`` and shows each token its clients' world;
``/healthz``, ``/readyz`` and ``/metrics`` stay open for probes and scrapers, and so does
``/``, a static page that fetches its data from ``/v1`` with the token (docs/api.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from streams.api import MAX_BODY, build_api, page_handler
from streams.api.auth import Access
from streams.api.events import KafkaSink

if TYPE_CHECKING:
    from streams.agents.worker import Worker
    from streams.kafka.archive import Archive
    from streams.metrics import Metrics

__all__ = ["WORKER", "build_app"]

WORKER = web.AppKey("worker", object)  # the Worker the app serves (for handlers added later)


def build_app(
    worker: Worker,
    metrics: Metrics | None,
    *,
    api_token: str | None = None,
    access: Access | None = None,
    archive: Archive | None = None,
) -> web.Application:
    """``archive``: embedded mode's archive, which posted events are appended to first."""
    app = web.Application(client_max_size=MAX_BODY)
    app[WORKER] = worker
    sink = KafkaSink(worker.options.bootstrap, worker.options.client, archive)

    async def close_sink(app: web.Application) -> None:
        await sink.close()

    app.on_cleanup.append(close_sink)

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

    app.router.add_get("/", page_handler)
    app.add_subapp(
        "/v1",
        build_api(worker, api_token=api_token, access=access, events=(sink, worker.names)),
    )
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    if metrics is not None:
        app.router.add_get("/metrics", metrics.aiohttp_handler())
    return app
