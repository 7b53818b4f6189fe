"""The ``/v1`` JSON API: thin handlers that check input, call ``streams.query``, answer JSON.

Every worker holds the whole state (docs/architecture.md, Scaling out), so each answers
every query completely from its own engine: no routing or gathering between workers. A
handler runs on the worker's event loop between two batches, so it reads a consistent state;
``what-if`` takes its snapshot there and applies the hypothetical events in a thread.

Every handler asks with the scope of the request's token (``scope_of``): a scoped token sees
its own clients' conflicts, exposures, contracts, spend and what-ifs, and the market's
ownership facts, nothing of another client's (docs/security.md, Tenancy).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

import orjson
import structlog
from aiohttp import web

from streams import query
from streams.api.auth import Access, bearer_middleware, scope_of
from streams.api.events import EventSink, post_events_handler
from streams.api.live import LiveFeed, stream_handler
from streams.api.openapi import openapi_document
from streams.api.params import ApiError, QueryParams, slug
from streams.engine import AlertRecord, Engine
from streams.engine.provenance import Provenance
from streams.kafka.topics import TopicNames

__all__ = ["MAX_BODY", "QueryState", "build_api"]

log = structlog.get_logger("stakewatch.api")

MAX_BODY = 1024 * 1024  # what-if bodies; aiohttp answers 413 above it
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class QueryState(Protocol):
    """What the API reads: a ``Worker``, or ``streams.query.State`` built from a file."""

    @property
    def engine(self) -> Engine: ...
    @property
    def provenance(self) -> Provenance: ...
    @property
    def latest(self) -> Mapping[str, AlertRecord]: ...


def _json(doc: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(doc), status=status, content_type="application/json")


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure becomes ``{"error": "<one line>"}`` with a 4xx (5xx only for bugs)."""
    try:
        return await handler(request)
    except ApiError as exc:
        return _json({"error": exc.reason}, exc.status)
    except query.NotFound as exc:
        return _json({"error": str(exc)}, 404)
    except query.BadHypothesis as exc:
        return _json({"error": str(exc)}, 400)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = _json({"error": exc.reason}, exc.status)
        if "Allow" in exc.headers:  # 405 must say what is allowed (RFC 9110)
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    except (asyncio.CancelledError, ConnectionResetError):
        raise
    except Exception:
        log.exception("api request failed", path=request.path)
        return _json({"error": "internal error (logged)"}, 500)


def build_api(
    state: QueryState,
    *,
    api_token: str | None = None,
    access: Access | None = None,
    live_interval: float = 0.2,
    events: tuple[EventSink, TopicNames] | None = None,
) -> web.Application:
    """The ``/v1`` sub-application over `state` (read at each request: it may be swapped);
    with `events` (where to publish, the topic names), ``POST /v1/events`` too.

    `access` holds the tokens and what each may see (and whether it may write);
    `api_token` alone is the one token that sees everything (``STAKEWATCH_API_TOKEN``);
    neither: the API is open to read (loopback only) and closed to writes."""
    access = access if access is not None else Access.of(api_token)
    api = web.Application(middlewares=[_errors, bearer_middleware(access)])
    feed = LiveFeed(state, live_interval)
    api.cleanup_ctx.append(feed.context)

    async def end_streams(app: web.Application) -> None:
        feed.close()  # open streams end now, so shutdown does not wait on them

    api.on_shutdown.append(end_streams)
    doc = openapi_document()

    async def conflicts(request: web.Request) -> web.Response:
        q = QueryParams(request, {"client", "vendor", "rival", "severity", "limit"})
        result = query.open_conflicts(
            state.engine,
            state.latest,
            client=q.slug("client"),
            vendor=q.slug("vendor"),
            rival=q.slug("rival"),
            severity=q.severity(),
            limit=q.integer("limit", 1000, 1, 10_000),
            scope=scope_of(request),
        )
        return _json({"ready": _ready(state), **result})

    async def resolved(request: web.Request) -> web.Response:
        q = QueryParams(request, {"limit"})
        limit = q.integer("limit", 20, 1, 100)
        scope = scope_of(request)
        seen = [r for r in feed.resolved if scope.sees(r["client"])]
        return _json({"resolved": seen[:limit]})

    async def exposure(request: web.Request) -> web.Response:
        QueryParams(request, set())
        client = slug(request.match_info["client"], "client")
        return _json(query.client_exposure(state.engine, client, scope_of(request)))

    async def entity(request: web.Request) -> web.Response:
        QueryParams(request, set())
        entity = slug(request.match_info["id"], "id")
        return _json(query.entity(state.engine, entity, scope_of(request)))

    async def owners(request: web.Request) -> web.Response:
        QueryParams(request, set())
        entity = slug(request.match_info["id"], "id")
        return _json(query.owners(state.engine, entity, scope_of(request)))

    async def holdings(request: web.Request) -> web.Response:
        QueryParams(request, set())
        entity = slug(request.match_info["id"], "id")
        return _json(query.holdings(state.engine, entity, scope_of(request)))

    async def explain(request: web.Request) -> web.Response:
        q = QueryParams(request, {"client", "vendor", "rival"})
        client = q.slug("client", required=True)
        vendor = q.slug("vendor", required=True)
        rival = q.slug("rival", required=True)
        assert client and vendor and rival
        scope = scope_of(request)
        return _json(query.explain(state.engine, state.provenance, client, vendor, rival, scope))

    async def what_if(request: web.Request) -> web.Response:
        QueryParams(request, set())
        body = await request.read()
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise ApiError(400, f"body: not JSON ({exc})") from None
        if isinstance(doc, dict) and set(doc) == {"events"}:
            doc = doc["events"]
        if not isinstance(doc, list):
            raise ApiError(400, 'body: expected a list of events or {"events": [...]}')
        if len(doc) > query.MAX_EVENTS:
            raise ApiError(400, f"body: at most {query.MAX_EVENTS} events, got {len(doc)}")
        engine = state.engine
        blob = engine.snapshot()  # here, on the loop: the live engine is consistent
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(
            None, query.what_if_snapshot, blob, engine.config, doc, scope_of(request)
        )
        return _json(result)

    async def alternatives(request: web.Request) -> web.Response:
        q = QueryParams(request, {"client", "category"})
        client = q.slug("client", required=True)
        category = q.text("category", required=True)
        assert client and category
        return _json(query.alternatives(state.engine, client, category, scope_of(request)))

    async def stream(request: web.Request) -> web.StreamResponse:
        QueryParams(request, set())
        return await stream_handler(request, feed, scope_of(request))

    async def openapi(request: web.Request) -> web.Response:
        return _json(doc)

    api.router.add_get("/conflicts", conflicts)
    api.router.add_get("/conflicts/resolved", resolved)
    api.router.add_get("/exposure/{client}", exposure)
    api.router.add_get("/entities/{id}", entity)
    api.router.add_get("/entities/{id}/owners", owners)
    api.router.add_get("/entities/{id}/holdings", holdings)
    api.router.add_get("/explain", explain)
    api.router.add_post("/what-if", what_if)
    api.router.add_get("/alternatives", alternatives)
    api.router.add_get("/stream", stream)
    api.router.add_get("/openapi.json", openapi)
    if events is not None:  # the one write: streams/api/events.py
        api.router.add_post("/events", post_events_handler(state, *events, api_token))
    return api


def _ready(state: QueryState) -> bool:
    """False while a worker is still catching up (answers then reflect a past watermark)."""
    ready = getattr(state, "ready", None)
    return True if ready is None else ready.is_set()
