"""The delivery pipeline the alerts worker drives: route → order → dedup → rate-limit → retry
→ record, composed per receiver (after Alertmanager's ``notify/`` stages).

``await dispatcher.submit(record, ack)`` queues a record; ``ack()`` is called once every
receiver the record is routed to has either accepted it, been found to know it already
(notification log), or given it up for good (a permanent answer, or the give-up time ran
out). The worker commits a Kafka offset only after its ack → at-least-once.

Ordering: one lane per ``(receiver, dedup_key)`` delivers that conflict's records one after
the other, in submit order, retries included: a receiver never sees ``resolved`` before the
``firing`` it resolves. Lanes of different conflicts run in parallel, at most
``Channel.max_in_flight`` per receiver. ``max_pending`` bounds the records submitted and not
yet acked: beyond it ``submit`` waits (it never drops), which stops the worker consuming.

Crash safety: before a record's first attempt the lane writes an *intent* to the notification
log, and the outcome after the answer. After a ``kill -9`` the log tells "never tried"
(send), "told" (skip) and "in doubt" (an attempt was in flight: send again, through the
receiver's ``redeliver`` when it has one, so Slack can say the message may be a repeat).
"""

from __future__ import annotations

import asyncio
import inspect
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog
from aiolimiter import AsyncLimiter

from alerts.notification_log import SENDING, NotificationLog, decide, updated
from alerts.receivers.base import Delivery, Receiver
from alerts.record import AlertRecord
from alerts.retry import PERMANENT, RetryPolicy, backoff, deliver_with_retry

__all__ = [
    "Ack",
    "Channel",
    "DeliveryMetrics",
    "Dispatcher",
    "NullMetrics",
    "OffsetTracker",
    "Router",
]

Ack = Callable[[], Awaitable[None] | None]


class Router(Protocol):
    """Which receivers (by name) get a record; ``alerts.routing.Router`` is the TOML one."""

    def route(self, record: AlertRecord) -> Sequence[str]: ...


class DeliveryMetrics(Protocol):
    """Hooks for the metrics module (which owns the prometheus registry).

    ``outcome`` is one of ``delivered``, ``recorded`` (``deliver=False``), ``skipped``
    (the notification log says the receiver knows), ``failed`` (permanent answer),
    ``gave_up`` (retries ran out of time), ``unrouted`` (no route matched).
    """

    def delivery(self, receiver: str, outcome: str) -> None: ...

    def retry(self, receiver: str) -> None: ...

    def queue_depth(self, receiver: str, depth: int) -> None: ...

    def backpressure(self, pending: int) -> None: ...


class NullMetrics:
    def delivery(self, receiver: str, outcome: str) -> None:
        pass

    def retry(self, receiver: str) -> None:
        pass

    def queue_depth(self, receiver: str, depth: int) -> None:
        pass

    def backpressure(self, pending: int) -> None:
        pass


@dataclass
class Channel:
    """A receiver with its delivery policy: retries, rate limit, parallel conflicts."""

    receiver: Receiver
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    limiter: AsyncLimiter | None = None
    max_in_flight: int = 8

    @property
    def name(self) -> str:
        return self.receiver.name


@dataclass(eq=False)
class _Ticket:
    record: AlertRecord
    ack: Ack | None
    remaining: int
    deliver: bool = True


@dataclass(eq=False)
class _Lane:
    queue: deque[_Ticket] = field(default_factory=deque)
    task: asyncio.Task[None] | None = None


class Dispatcher:
    """See the module docstring. One instance per worker; all methods on one event loop."""

    def __init__(
        self,
        receivers: Iterable[Channel | Receiver],
        router: Router | None,
        notification_log: NotificationLog,
        *,
        deliver: bool = True,
        max_pending: int = 1000,
        backlog_warning: int = 100,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        rand: Callable[[], float] = random.random,
        metrics: DeliveryMetrics | None = None,
        logger: Any = None,
    ) -> None:
        channels = [r if isinstance(r, Channel) else Channel(r) for r in receivers]
        self._channels = {c.name: c for c in channels}
        if len(self._channels) != len(channels):
            raise ValueError("receiver names must be unique")
        if max_pending < 1:
            raise ValueError("max_pending must be at least 1")
        self._router = router
        self._log_store = notification_log
        self._deliver = deliver
        self._max_pending = max_pending
        self._backlog_warning = backlog_warning
        self._sleep = sleep
        self._clock = clock
        self._rand = rand
        self._metrics: DeliveryMetrics = metrics or NullMetrics()
        self._log = logger or structlog.get_logger("stakewatch.alerts")
        self._lanes: dict[tuple[str, str], _Lane] = {}
        self._slots = {
            name: asyncio.Semaphore(c.max_in_flight) for name, c in self._channels.items()
        }
        self._depth = dict.fromkeys(self._channels, 0)
        self._pending = 0
        self._space = asyncio.Condition()
        self._idle = asyncio.Event()
        self._idle.set()
        self._closed = False

    # -- public -------------------------------------------------------------------------------

    @property
    def receivers(self) -> tuple[str, ...]:
        return tuple(self._channels)

    @property
    def pending(self) -> int:
        """Records submitted and not yet acked."""
        return self._pending

    async def submit(
        self, record: AlertRecord, ack: Ack | None = None, *, deliver: bool = True
    ) -> None:
        """Queue ``record``; returns once queued (waits while ``max_pending`` are pending).

        ``deliver=False`` records this one record as told without sending it (records caused
        by ``stakewatch replay --no-deliver``); a dispatcher built with ``deliver=False``
        sends nothing whatever this says.
        """
        if self._closed:
            raise RuntimeError("dispatcher is closed")
        names = self._routes(record)
        if not names:
            self._metrics.delivery("-", "unrouted")
            self._log.info("alert.unrouted", dedup_key=record.dedup_key, event_id=record.event_id)
            await self._call_ack(ack, record)
            return
        await self._reserve()
        ticket = _Ticket(record, ack, len(names), deliver and self._deliver)
        for name in names:
            self._enqueue(name, ticket)

    async def join(self) -> None:
        """Wait until every submitted record has been acked."""
        await self._idle.wait()

    async def aclose(self) -> None:
        """Stop now: in-flight deliveries are cancelled and their records stay un-acked
        (as after a crash; the worker will see them again and the log skips what was told)."""
        self._closed = True
        tasks = [lane.task for lane in self._lanes.values() if lane.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._lanes.clear()

    async def __aenter__(self) -> Dispatcher:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- stages -------------------------------------------------------------------------------

    def _routes(self, record: AlertRecord) -> list[str]:
        names = list(self._router.route(record)) if self._router else list(self._channels)
        known = [n for n in dict.fromkeys(names) if n in self._channels]
        if len(known) != len(set(names)):
            missing = sorted(set(names) - set(known))
            self._log.warning("alert.unknown_receivers", receivers=missing)
        return known

    async def _reserve(self) -> None:
        if self._pending >= self._max_pending:
            self._metrics.backpressure(self._pending)
            self._log.warning(
                "alerts.backpressure", pending=self._pending, max_pending=self._max_pending
            )
            async with self._space:
                await self._space.wait_for(lambda: self._pending < self._max_pending)
        self._pending += 1
        self._idle.clear()

    def _enqueue(self, name: str, ticket: _Ticket) -> None:
        key = (name, ticket.record.dedup_key)
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = _Lane()
            lane.queue.append(ticket)
            lane.task = asyncio.create_task(self._run_lane(key, lane), name=f"alerts:{name}")
        else:
            lane.queue.append(ticket)
        self._depth[name] += 1
        depth = self._depth[name]
        self._metrics.queue_depth(name, depth)
        if self._backlog_warning and depth % self._backlog_warning == 0:
            self._log.warning("alerts.receiver_backlog", receiver=name, depth=depth)

    async def _run_lane(self, key: tuple[str, str], lane: _Lane) -> None:
        name = key[0]
        channel = self._channels[name]
        try:
            while lane.queue:
                ticket = lane.queue[0]
                async with self._slots[name]:
                    await self._handle(channel, ticket.record, ticket.deliver)
                lane.queue.popleft()
                self._depth[name] -= 1
                self._metrics.queue_depth(name, self._depth[name])
                await self._done(ticket)
        finally:
            if self._lanes.get(key) is lane and not lane.queue:
                del self._lanes[key]

    async def _handle(self, channel: Channel, record: AlertRecord, deliver: bool) -> None:
        name, key = channel.name, record.dedup_key
        previous = await self._with_log_retry(lambda: self._log_store.get(name, key))
        decision = decide(previous, record)
        fields = {
            "receiver": name,
            "dedup_key": key,
            "status": record.status,
            "severity": record.severity,
            "event_id": record.event_id,
        }
        if decision not in ("send", "in_doubt"):
            self._metrics.delivery(name, "skipped")
            self._log.debug("alert.skipped", reason=decision, **fields)
            return
        if not deliver:
            value = updated(previous, record, "recorded", told=True)
            await self._with_log_retry(lambda: self._log_store.put(name, key, value))
            self._metrics.delivery(name, "recorded")
            self._log.debug("alert.recorded", **fields)
            return

        def on_retry(delivery: Delivery, wait: float) -> None:
            self._metrics.retry(name)
            self._log.warning(
                "alert.retry",
                http_status=delivery.status,
                answer=delivery.detail,
                attempt=delivery.attempts,
                wait_s=round(wait, 3),
                **fields,
            )

        in_doubt = decision == "in_doubt"
        if in_doubt:
            self._log.warning("alert.in_doubt", **fields)
        intent = updated(previous, record, SENDING, told=False)
        announced = False

        async def attempt() -> Delivery:
            nonlocal announced
            if channel.limiter is not None:
                await channel.limiter.acquire()
            if not announced:  # after the rate limit: a queued record is not in doubt
                await self._with_log_retry(lambda: self._log_store.put(name, key, intent))
                announced = True
            return await self._attempt(channel, record, in_doubt)

        delivery = await deliver_with_retry(
            attempt,
            channel.policy,
            sleep=self._sleep,
            clock=self._clock,
            rand=self._rand,
            on_retry=on_retry,
        )
        if delivery.ok:
            value = updated(previous, record, "delivered", told=True)
            outcome = "delivered"
        else:
            outcome = "gave_up" if delivery.gave_up else "failed"
            value = updated(previous, record, f"{outcome}: {delivery.detail}", told=False)
        await self._with_log_retry(lambda: self._log_store.put(name, key, value))
        self._metrics.delivery(name, outcome)
        log = self._log.info if delivery.ok else self._log.error
        log(
            f"alert.{outcome}",
            http_status=delivery.status,
            answer=delivery.detail,
            attempts=delivery.attempts,
            **fields,
        )

    async def _attempt(self, channel: Channel, record: AlertRecord, in_doubt: bool) -> Delivery:
        """One request; a record in doubt goes through ``redeliver`` if the receiver has it."""
        redeliver = getattr(channel.receiver, "redeliver", None) if in_doubt else None
        try:
            if redeliver is not None:
                delivered: Delivery = await redeliver(record)
                return delivered
            return await channel.receiver.deliver(record)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # A receiver bug. Its message could carry a secret: keep the type and the place.
            tb = exc.__traceback__
            while tb is not None and tb.tb_next is not None:
                tb = tb.tb_next
            where = f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}" if tb else "?"
            detail = f"receiver error {type(exc).__name__} at {where}"
            return Delivery(channel.name, PERMANENT, None, detail)

    async def _with_log_retry(self, call: Callable[[], Awaitable[Any]]) -> Any:
        """Notification-log calls are retried until they succeed: without the log we can
        neither skip safely nor ack, and dropping is not an option (queue, don't drop)."""
        failures = 0
        while True:
            try:
                return await call()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                wait = backoff(failures, RetryPolicy(), self._rand())
                self._log.error(
                    "alerts.notification_log_error",
                    error=type(exc).__name__,
                    failures=failures,
                    wait_s=round(wait, 3),
                )
                await self._sleep(wait)

    async def _done(self, ticket: _Ticket) -> None:
        ticket.remaining -= 1
        if ticket.remaining:
            return
        await self._call_ack(ticket.ack, ticket.record)
        self._pending -= 1
        async with self._space:
            self._space.notify_all()
        if self._pending == 0:
            self._idle.set()

    async def _call_ack(self, ack: Ack | None, record: AlertRecord) -> None:
        if ack is None:
            return
        try:
            result = ack()
            if inspect.isawaitable(result):
                await result
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._log.error(
                "alerts.ack_failed",
                error=type(exc).__name__,
                dedup_key=record.dedup_key,
                event_id=record.event_id,
            )


class OffsetTracker:
    """Turns out-of-order acks into the Kafka offset that is safe to commit.

    Records of different conflicts finish in any order; Kafka commits a position, so only
    the contiguous prefix of acked offsets may be committed. ``track(offset)`` when a record
    is submitted, ``done(offset)`` from its ack; ``done`` returns the new offset to commit
    (last contiguous acked offset + 1) or ``None`` when the committable position did not move.
    """

    def __init__(self) -> None:
        self._open: deque[int] = deque()
        self._finished: set[int] = set()
        self._last: int | None = None

    def track(self, offset: int) -> None:
        if self._last is not None and offset <= self._last:
            raise ValueError(f"offset {offset} not after {self._last}")
        self._last = offset
        self._open.append(offset)

    def done(self, offset: int) -> int | None:
        self._finished.add(offset)
        commit = None
        while self._open and self._open[0] in self._finished:
            head = self._open.popleft()
            self._finished.discard(head)
            commit = head + 1
        return commit
