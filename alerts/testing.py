"""Test helpers shipped with the package (instead of mocks): a fake clock, a metrics
recorder, and local HTTP servers that speak the receivers' real APIs.

Used by ``tests/unit/alerts`` and available to the worker's tests and the demo::

    async with FakeApi.pagerduty() as pd:
        receiver = PagerDutyReceiver(client, SecretStr("key"), url=pd.url)
        ...
        assert [e["event_action"] for e in pd.accepted_json()] == ["trigger", "resolve"]
"""

from __future__ import annotations

import asyncio
import heapq
import inspect
import itertools
import socket
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

__all__ = [
    "PD_INVALID",
    "PD_SERVER_ERROR",
    "PD_THROTTLED",
    "SLACK_CHANNEL_NOT_FOUND",
    "SLACK_INVALID_PAYLOAD",
    "SLACK_RATE_LIMITED",
    "SLACK_SERVER_ERROR",
    "Answer",
    "FakeApi",
    "FakeClock",
    "Received",
    "RecordingMetrics",
    "free_port",
]


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now (the kernel picks it); racy by nature, fine on loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class FakeClock:
    """Virtual time: a monotonic clock and a ``sleep`` that returns without waiting.

    Concurrent sleepers overlap as in real time: each ``sleep`` registers its wake-up time,
    and a helper task wakes sleepers one at a time in wake-up order, moving the clock to each
    one's time. Between two wake-ups it yields for ``step`` real seconds so that work in
    flight (local HTTP requests) gets done and registers its own sleeps first. A "30 s
    outage" takes a few milliseconds. ``at(t, callback)`` runs ``callback`` (sync or async)
    once the clock reaches ``t`` — e.g. bring a fake receiver back up.
    """

    def __init__(self, start: float = 0.0, step: float = 0.001) -> None:
        self.now = start
        self.step = step
        self.sleeps: list[float] = []
        self._due: list[tuple[float, int, Callable[[], Any]]] = []
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._advancer: asyncio.Task[None] | None = None

    def monotonic(self) -> float:
        return self.now

    __call__ = monotonic

    def at(self, when: float, callback: Callable[[], Any]) -> None:
        heapq.heappush(self._due, (when, next(self._seq), callback))

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + max(0.0, seconds), next(self._seq), future))
        if self._advancer is None or self._advancer.done():
            self._advancer = asyncio.create_task(self._advance())
        await future

    async def _advance(self) -> None:
        while self._sleepers:
            await asyncio.sleep(self.step)
            if not self._sleepers:
                break
            wake, _, future = heapq.heappop(self._sleepers)
            self.now = max(self.now, wake)
            while self._due and self._due[0][0] <= self.now:
                _, _, callback = heapq.heappop(self._due)
                result = callback()
                if inspect.isawaitable(result):
                    await result
            if not future.done():
                future.set_result(None)


@dataclass
class RecordingMetrics:
    """Implements ``alerts.dispatcher.DeliveryMetrics`` by counting."""

    deliveries: Counter[tuple[str, str]] = field(default_factory=Counter)
    retries: Counter[str] = field(default_factory=Counter)
    depths: dict[str, list[int]] = field(default_factory=dict)
    backpressured: list[int] = field(default_factory=list)
    held_back: asyncio.Event = field(default_factory=asyncio.Event)  # set on backpressure

    def delivery(self, receiver: str, outcome: str) -> None:
        self.deliveries[(receiver, outcome)] += 1

    def retry(self, receiver: str) -> None:
        self.retries[receiver] += 1

    def queue_depth(self, receiver: str, depth: int) -> None:
        self.depths.setdefault(receiver, []).append(depth)

    def backpressure(self, pending: int) -> None:
        self.backpressured.append(pending)
        self.held_back.set()


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes | str = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering (real time: keep it small)


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int  # what the fake answered

    def json(self) -> Any:
        return orjson.loads(self.body)


Responder = Callable[[Received], Answer | Awaitable[Answer | None] | None]


class FakeApi:
    """A local HTTP server on 127.0.0.1 answering like a receiver's API.

    Answers come from, in order: the queue filled by ``answer_next``, then ``responder``
    (if it returns an answer), then the API's success answer. ``received`` lists every
    request with the status it got; ``accepted`` only the 2xx ones. ``stop()`` then
    ``start()`` simulates a receiver that is down (connection refused) and comes back on
    the same port.
    """

    def __init__(
        self,
        success: Callable[[bytes], Answer],
        *,
        path: str = "/",
        responder: Responder | None = None,
    ) -> None:
        self.path = path
        self.port = free_port()
        self.received: list[Received] = []
        self.responder = responder
        self._success = success
        self._queue: deque[Answer] = deque()
        self._runner: web.AppRunner | None = None

    # -- the real APIs' answers --------------------------------------------------------------

    @classmethod
    def slack(cls, **kw: Any) -> FakeApi:
        """Slack incoming webhook: ``200 ok``."""
        return cls(
            lambda body: Answer(200, "ok", {"Content-Type": "text/html"}),
            path="/services/T000/B000/XXXXSECRETXXXX",
            **kw,
        )

    @classmethod
    def pagerduty(cls, **kw: Any) -> FakeApi:
        """Events API v2: ``202 {"status":"success","dedup_key":…}``."""

        def ok(body: bytes) -> Answer:
            try:
                key = orjson.loads(body).get("dedup_key")
            except orjson.JSONDecodeError:
                return PD_INVALID
            payload = {"status": "success", "message": "Event processed", "dedup_key": key}
            return Answer(202, orjson.dumps(payload), {"Content-Type": "application/json"})

        return cls(ok, path="/v2/enqueue", **kw)

    @classmethod
    def webhook(cls, **kw: Any) -> FakeApi:
        return cls(lambda body: Answer(204), path="/hooks/stakewatch", **kw)

    # -- scripting ---------------------------------------------------------------------------

    def answer_next(self, *answers: Answer) -> None:
        self._queue.extend(answers)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    @property
    def accepted(self) -> list[Received]:
        return [r for r in self.received if 200 <= r.status < 300]

    def accepted_json(self) -> list[Any]:
        return [r.json() for r in self.accepted]

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeApi:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        probe = Received(request.path, dict(request.headers), body, 0)
        answer: Answer | None = None
        if self._queue:
            answer = self._queue.popleft()
        elif self.responder is not None:
            result = self.responder(probe)
            answer = await result if inspect.isawaitable(result) else result
        if answer is None:
            answer = self._success(body)
        if answer.delay:
            await asyncio.sleep(answer.delay)
        self.received.append(Received(request.path, dict(request.headers), body, answer.status))
        raw = answer.body.encode() if isinstance(answer.body, str) else answer.body
        return web.Response(status=answer.status, body=raw, headers=answer.headers)


#: Canned answers of the real APIs.
SLACK_RATE_LIMITED = Answer(429, "rate_limited", {"Retry-After": "30"})
SLACK_INVALID_PAYLOAD = Answer(400, "invalid_payload")
SLACK_CHANNEL_NOT_FOUND = Answer(404, "channel_not_found")
SLACK_SERVER_ERROR = Answer(500, "rollup_error")
PD_INVALID = Answer(
    400,
    orjson.dumps(
        {"status": "invalid event", "message": "Event object is invalid", "errors": ["bad"]}
    ),
    {"Content-Type": "application/json"},
)
PD_THROTTLED = Answer(429, b"")
PD_SERVER_ERROR = Answer(500, b"Internal Server Error")
