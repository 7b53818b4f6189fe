"""``POST /v1/events``: CloudEvents posted by a tool or typed in on the live page, onto
their topics — the same decoder, the same routing and event-time stamps as `replay`.

- **Bodies**: ``application/cloudevents-batch+json`` (a JSON array),
  ``application/x-ndjson`` (one event a line) or ``application/cloudevents+json`` (one
  event); anything else is 415. At most 1000 events and 1 MiB (413, with a message).
- **All or nothing.** Every event is decoded first; if any does not decode, nothing is
  published and the answer is 400 with each bad event's index and reason. Otherwise 202
  with the ids published.
- **A re-post is a duplicate, never a second page.** Events whose ``(source, id)`` the
  engine has applied (or that repeat within the body) are not published again and come
  back under ``duplicates``; one re-posted before the engine saw the first is published
  and then refused by the engine as ``duplicate``, like any repeated event.
- **Writing needs the right.** The access layer may put a principal on the request
  (``PRINCIPAL``; the scoped tokens file's grant, whose ``write`` says it may post);
  without one, the single ``STAKEWATCH_API_TOKEN`` may write and no token means no
  writing. Read-only principals and unauthenticated posts get 403.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any, Protocol

import orjson
from aiohttp import web

from streams.api.auth import GRANT, scope_of
from streams.events import Event, Rejection, decode
from streams.events.kafka_binding import CONTENT_TYPE, STRUCTURED
from streams.kafka.archive import Archive, ArchivedRecord
from streams.kafka.publish import Publisher, make_producer
from streams.kafka.replay import event_time_ms
from streams.kafka.topics import TopicNames, route
from streams.query.scope import EVERYTHING, Scope

__all__ = ["MAX_POSTED", "PRINCIPAL", "EventSink", "KafkaSink", "post_events_handler"]

MAX_POSTED = 1000
# request key of the principal the access layer found (its grant: `write`, `scope`)
PRINCIPAL: Any = GRANT
_BATCH = "application/cloudevents-batch+json"
_NDJSON = "application/x-ndjson"
_HEADERS = ((CONTENT_TYPE, STRUCTURED.encode()),)


class ApiAnswer(Exception):
    """A non-2xx answer with a JSON body (the handler's own errors)."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(body.get("error", ""))
        self.status = status
        self.body = body


class EventSink(Protocol):
    """Where accepted events go: ``publish`` returns once the broker has them."""

    async def publish(self, records: Sequence[ArchivedRecord]) -> None: ...


class KafkaSink:
    """A producer of its own (started on the first post), archiving in embedded mode."""

    def __init__(self, bootstrap: str, client: Any = None, archive: Archive | None = None) -> None:
        self.bootstrap, self.client, self.archive = bootstrap, client, archive
        self._producer: Any = None
        self._publisher: Publisher | None = None

    async def publish(self, records: Sequence[ArchivedRecord]) -> None:
        if self._publisher is None:
            producer = make_producer(self.bootstrap, dict(self.client or {}), linger_ms=0)
            await producer.start()
            self._producer, self._publisher = producer, Publisher(producer, self.archive)
        await self._publisher.publish(records)
        await self._publisher.flush()

    async def close(self) -> None:
        if self._producer is not None:
            with contextlib.suppress(Exception):
                await self._producer.stop()
            self._producer = self._publisher = None


def may_write(request: web.Request, api_token: str | None) -> bool:
    """The request's right to post events (module docstring, "Writing needs the right")."""
    principal = request.get(PRINCIPAL)
    if principal is not None:
        return bool(getattr(principal, "write", False))
    return api_token is not None


def post_events_handler(state: Any, sink: EventSink, names: TopicNames, api_token: str | None):
    """The handler over `state` (its `engine` says what was applied already)."""

    async def post_events(request: web.Request) -> web.Response:
        try:
            if request.rel_url.query:
                raise ApiAnswer(400, {"error": "POST /v1/events takes no parameters"})
            if not may_write(request, api_token):
                raise ApiAnswer(
                    403,
                    {
                        "error": "posting events needs a token with write rights "
                        "(STAKEWATCH_API_TOKEN, or a write token of the tokens file)"
                    },
                )
            try:
                body = await request.read()
            except web.HTTPRequestEntityTooLarge:
                raise ApiAnswer(413, {"error": "body: over 1 MiB"}) from None
            raws = _events_of(request.content_type, body)
            accepted, duplicates = _decoded(raws, state, scope_of(request))
            records = []
            for raw, event in accepted:
                topic, key = route(names, event)
                records.append(ArchivedRecord(topic, key, raw, event_time_ms(event.time), _HEADERS))
            if records:
                await sink.publish(records)
        except ApiAnswer as answer:
            return _json(answer.body, answer.status)
        return _json(
            {
                "accepted": len(accepted),
                "ids": [e.id for _, e in accepted],
                "duplicates": duplicates,
            },
            202,
        )

    return post_events


def _outside(event: Event, engine: Any, scope: Scope) -> str | None:
    """Why a scoped token may not post `event`, or None."""
    data: Any = event.data
    if event.type in ("contract.signed", "spend.recorded"):
        client = data.client
    elif event.type in ("contract.amended", "contract.terminated"):
        contract = engine.rel.contracts.get(data.contract_id)
        client = None if contract is None else contract.client
        if client is None or not scope.sees(client):
            return f"contract {data.contract_id!r} is not a contract of this token's clients"
        return None
    elif event.type in ("rivalry.declared", "rivalry.withdrawn"):
        if scope.sees(data.a) or scope.sees(data.b):
            return None
        return "a rivalry names one of this token's clients"
    else:
        return None  # ownership and entities: market facts, anyone may post them
    return None if scope.sees(client) else f"client {client!r} is not one of this token's clients"


def _json(doc: Any, status: int) -> web.Response:
    return web.Response(body=orjson.dumps(doc), status=status, content_type="application/json")


def _events_of(content_type: str, body: bytes) -> list[bytes]:
    """The body's events as raw JSON objects, by its media type."""
    if content_type == _NDJSON:
        raws = [line for line in body.splitlines() if line.strip()]
    elif content_type in (_BATCH, STRUCTURED):
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise ApiAnswer(400, {"error": f"body: not JSON ({exc})"}) from None
        if content_type == STRUCTURED:
            doc = [doc]
        if not isinstance(doc, list):
            raise ApiAnswer(400, {"error": f"body: {_BATCH} is a JSON array of events"})
        raws = [orjson.dumps(item) for item in doc]
    else:
        raise ApiAnswer(
            415,
            {
                "error": f"Content-Type {content_type or '(none)'!r}: send {_BATCH}, {_NDJSON} "
                f"or {STRUCTURED}"
            },
        )
    if not raws:
        raise ApiAnswer(400, {"error": "body: no events"})
    if len(raws) > MAX_POSTED:
        raise ApiAnswer(413, {"error": f"body: at most {MAX_POSTED} events, got {len(raws)}"})
    return raws


def _decoded(
    raws: list[bytes], state: Any, scope: Scope = EVERYTHING
) -> tuple[list[tuple[bytes, Event]], list[str]]:
    """Decode every event; any bad one is a 400 naming each (nothing is published). A
    scoped token may post market facts (ownership, entities) and its own clients' contracts,
    spend and rivalries; an event about another client answers as one about an unknown
    contract or client would, so a post cannot probe another client's world."""
    good: list[tuple[bytes, Event]] = []
    bad: list[dict[str, Any]] = []
    for index, raw in enumerate(raws):
        event = decode(raw)
        if isinstance(event, Rejection):
            bad.append({"index": index, "code": event.code, "reason": str(event)})
        elif not scope.everything and (outside := _outside(event, state.engine, scope)):
            bad.append({"index": index, "code": "scope", "reason": f"scope: {outside}"})
        else:
            good.append((raw, event))
    if bad:
        first = bad[0]
        raise ApiAnswer(
            400,
            {
                "error": f"events[{first['index']}]: {first['reason']} "
                f"({len(bad)} of {len(raws)} events invalid; none published)",
                "events": bad,
            },
        )
    # A scoped writer is not told which events were applied already: the (source, id) of
    # another client's event would answer "duplicate" — an existence oracle. Its re-posts
    # are published, and the engine ignores them as duplicates (never a second page).
    seen = state.engine.seen if scope.everything else ()
    accepted, duplicates, here = [], [], set()
    for raw, event in good:
        key = (event.source, event.id)
        if key in seen or key in here:
            duplicates.append(event.id)
        else:
            here.add(key)
            accepted.append((raw, event))
    return accepted, duplicates
