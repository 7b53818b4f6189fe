"""Live changes for the page: which conflicts fired, changed or resolved, as they happen.

A worker calls its ``listeners`` with every alert record it computes (all leases), so
the feed pushes each firing and resolution to subscribers (``/v1/stream``, server-sent
events) as it happens, and remembers the last conflicts it saw resolve, so a page opened
after a resolution can still show it. States without listeners (plain test doubles) are
polled instead: the feed compares ``latest`` with what it saw a moment ago, and a conflict
that opens and resolves between two looks is then not seen.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol

import orjson
from aiohttp import web

from streams.engine import AlertRecord, Engine
from streams.query.common import watermark
from streams.query.scope import EVERYTHING, Scope

__all__ = ["LiveFeed", "stream_handler"]

KEEP_RESOLVED = 100
_QUEUE = 1000  # per subscriber; a slower reader gets one "reset" instead of a backlog


class _State(Protocol):
    @property
    def engine(self) -> Engine: ...
    @property
    def latest(self) -> Mapping[str, AlertRecord]: ...


class LiveFeed:
    """Diff ``state.latest`` over time; fan the changes out to subscribers."""

    def __init__(self, state: _State, interval: float = 0.2) -> None:
        self.state = state
        self.interval = interval
        self.resolved: deque[dict[str, Any]] = deque(maxlen=KEEP_RESOLVED)
        self._seen: dict[str, AlertRecord] = dict(state.latest)
        self._subscribers: set[asyncio.Queue] = set()
        self.closed = False
        listeners = getattr(state, "listeners", None)
        self.pushed = listeners is not None
        if listeners is not None:
            listeners.append(self.push)

    def push(self, record: AlertRecord) -> None:
        """One alert record from the worker, as it is computed."""
        if record.status == "firing":
            self._seen[record.dedup_key] = record
            self._publish([{"kind": "firing", **record.to_dict()}])
            return
        self._seen.pop(record.dedup_key, None)
        gone = {**record.to_dict(), "kind": "resolved", "resolved_by": record.event_time}
        self.resolved.appendleft(gone)
        self._publish([gone])

    def poll(self) -> list[dict[str, Any]]:
        """One look: the changes since the last one, oldest first."""
        latest = self.state.latest
        seen = self._seen
        changes = []
        for key, record in latest.items():
            if seen.get(key) is not record:
                changes.append({"kind": "firing", **record.to_dict()})
        now = watermark(self.state.engine)
        for key in sorted(seen.keys() - latest.keys()):
            gone = {**seen[key].to_dict(), "kind": "resolved", "status": "resolved"}
            gone["resolved_by"] = now  # the watermark when this look saw it gone
            self.resolved.appendleft(gone)
            changes.append(gone)
        self._seen = dict(latest)
        if changes:
            self._publish(changes)
        return changes

    def _publish(self, changes: list[dict[str, Any]]) -> None:
        for queue in self._subscribers:
            if queue.qsize() + len(changes) > _QUEUE:
                while not queue.empty():
                    queue.get_nowait()
                queue.put_nowait({"kind": "reset"})
                continue
            for change in changes:
                queue.put_nowait(change)

    async def run(self) -> None:
        while not self.closed and not self.pushed:
            self.poll()
            await asyncio.sleep(self.interval)

    @contextlib.contextmanager
    def subscribe(self):
        queue: asyncio.Queue = asyncio.Queue()
        self._subscribers.add(queue)
        try:
            yield queue
        finally:
            self._subscribers.discard(queue)

    def close(self) -> None:
        """Stop polling and end every open stream (at shutdown, so it does not wait)."""
        self.closed = True
        for queue in self._subscribers:
            queue.put_nowait(None)

    async def context(self, app: web.Application) -> AsyncIterator[None]:
        """aiohttp cleanup context: poll while the app runs."""
        task = asyncio.create_task(self.run(), name="live-feed")
        yield
        self.close()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _sse(event: str, data: Any) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


async def stream_handler(
    request: web.Request, feed: LiveFeed, scope: Scope = EVERYTHING, keepalive: float = 15.0
):
    """``GET /v1/stream``: ``hello`` with the watermark, then one ``alert`` per change of a
    conflict whose client `scope` sees (a ``reset`` tells a slow reader to re-read)."""
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    await response.prepare(request)
    with feed.subscribe() as queue, contextlib.suppress(ConnectionResetError):
        # a reader going away is how a stream normally ends
        await response.write(b"retry: 2000\n\n")
        await response.write(_sse("hello", {"watermark": watermark(feed.state.engine)}))
        while not feed.closed:
            try:
                change = await asyncio.wait_for(queue.get(), keepalive)
            except TimeoutError:
                await response.write(b": keepalive\n\n")
                continue
            if change is None:
                break
            if change.get("kind") != "reset" and not scope.sees(change.get("client", "")):
                continue  # another client's conflict: not this reader's to see
            await response.write(_sse("alert", change))
    return response
