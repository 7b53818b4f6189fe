"""The delivery agent: alert records from the alerts topic to the receivers, at least once,
never twice per state.

- **One reader.** The alerts topic has one partition and the agent reads it in the consumer
  group ``<group>-delivery``: with several worker processes exactly one delivers, and the
  others take over after a crash or a stop (group join, not a lease of our own).
- **Commit only what is done.** Each record goes to ``Dispatcher.submit`` with an ack; the
  agent commits the contiguous prefix of acked offsets (``OffsetTracker``). A record is acked
  once every routed receiver accepted it, was found to know it already, or gave it up.
- **Remember what was told.** ``KafkaNotificationLog`` is loaded at start and caught up on
  each assignment, so records read again after a crash, a rebalance or a rebuild are skipped;
  the intent the dispatcher writes before each send makes a crash mid-request visible.
- **Quiet records.** Alert records carrying ``QUIET`` (copied by the worker from inputs that
  ``stakewatch replay --no-deliver`` published) are logged as told and never sent.
- **Backpressure without leaving the group.** When ``max_pending`` records are open the
  partition is paused but ``getmany`` keeps being called, so a receiver that is down for an
  hour does not make the broker think this consumer died.

On a rebalance or a graceful stop the agent waits up to ``drain_timeout`` for open records,
cancels the rest (they stay uncommitted and come back to whoever reads next), and commits.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import httpx
import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from alerts.dispatcher import Channel, Dispatcher, OffsetTracker
from alerts.record import AlertRecord
from alerts.routing import AlertsConfig
from alerts.setup import build_channels
from streams.agents.membership import MemberSlot, member_id_of, start_as_member
from streams.agents.notification_log import KafkaNotificationLog
from streams.engine import EngineConfig
from streams.kafka.clients import make_consumer
from streams.kafka.headers import QUIET
from streams.kafka.topics import TopicNames, default_topics, ensure_topics

if TYPE_CHECKING:
    from streams.kafka.archive import Archive
    from streams.metrics import Metrics

__all__ = ["DeliveryAgent", "DeliveryOptions", "MetricsAdapter", "is_quiet"]

log = structlog.get_logger("stakewatch.delivery")


@dataclass(frozen=True, slots=True)
class DeliveryOptions:
    bootstrap: str
    config: AlertsConfig
    names: TopicNames = field(default_factory=TopicNames)
    group_id: str = "stakewatch-worker-delivery"
    session_timeout: float = 6.0
    heartbeat_interval: float = 1.0
    fetch_max_wait_ms: int = 100  # Tansu answers an empty fetch after half of this
    max_pending: int = 1000
    drain_timeout: float = 5.0
    http_timeout: float = 10.0
    archive: Archive | None = None  # embedded mode: the notification log is archived too
    client: Mapping[str, Any] = field(default_factory=dict)  # aiokafka SASL/SSL options
    member_dir: Path | None = None  # rejoin as the crashed predecessor (agents/membership.py)
    rules: EngineConfig = field(default_factory=EngineConfig)  # the worker's: receivers word by it


class MetricsAdapter:
    """``alerts.dispatcher.DeliveryMetrics`` onto ``streams.metrics.Metrics`` (whose delivery
    outcomes are delivered / failed / suppressed)."""

    OUTCOMES = {
        "delivered": "delivered",
        "failed": "failed",
        "gave_up": "failed",
        "skipped": "suppressed",
        "recorded": "suppressed",
    }

    def __init__(self, metrics: Metrics) -> None:
        self._m = metrics

    def delivery(self, receiver: str, outcome: str) -> None:
        mapped = self.OUTCOMES.get(outcome)
        if mapped is not None:  # "unrouted" has no receiver to count it under
            self._m.observe_delivery(receiver, mapped)

    def retry(self, receiver: str) -> None:
        self._m.observe_delivery_retry(receiver)

    def queue_depth(self, receiver: str, depth: int) -> None:
        self._m.set_delivery_queue_depth(receiver, depth)

    def backpressure(self, pending: int) -> None:
        self._m.observe_delivery_backpressure()


def is_quiet(headers: Sequence[tuple[str, bytes]] | None) -> bool:
    """Whether a record carries the ``--no-deliver`` flag."""
    return any(tuple(h) == QUIET for h in headers or ())


@dataclass(eq=False)
class _Assignment:
    """One holding of the alerts partition: its dispatcher and its offsets."""

    dispatcher: Dispatcher
    tracker: OffsetTracker = field(default_factory=OffsetTracker)
    draining: bool = False


class _Listener(ConsumerRebalanceListener):
    def __init__(self, agent: DeliveryAgent) -> None:
        self._agent = agent

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self._agent._release()

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        self._agent._joined()
        await self._agent._take(assigned)


class DeliveryAgent:
    """``await start()``, ``await stop()``; ``failure`` is set if the loop died."""

    def __init__(
        self,
        options: DeliveryOptions,
        metrics: Metrics | None = None,
        *,
        console_file: IO[str] | None = None,
    ) -> None:
        self.options = options
        self.tp = TopicPartition(options.names.alerts, 0)
        self.log = KafkaNotificationLog(
            options.bootstrap,
            options.names.notifications,
            archive=options.archive,
            client=options.client,
        )
        self.counts: Counter[str] = Counter()
        self.failure: BaseException | None = None
        self.assigned = asyncio.Event()
        self._metrics = MetricsAdapter(metrics) if metrics is not None else None
        self._console_file = console_file
        self._client: httpx.AsyncClient | None = None
        self._channels: list[Channel] = []
        self._consumer: AIOKafkaConsumer | None = None
        self._slot: MemberSlot | None = None
        self._state: _Assignment | None = None
        self._want: int | None = None  # next offset to commit
        self._committed: int | None = None
        self._commit_needed = asyncio.Event()
        self._commit_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._throttled = False  # hit max_pending, not yet back below half of it

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        o = self.options
        wanted = {o.names.alerts, o.names.notifications}
        await ensure_topics(
            o.bootstrap, [s for s in default_topics(o.names.prefix) if s.name in wanted], o.client
        )
        await self.log.start()
        self._client = httpx.AsyncClient(timeout=o.http_timeout)
        self._channels = build_channels(
            o.config, self._client, rules=o.rules, console_file=self._console_file
        )
        self._consumer = make_consumer(
            o.bootstrap,
            o.client,
            group_id=o.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",  # a new group must not skip what is already there
            session_timeout_ms=int(o.session_timeout * 1000),
            heartbeat_interval_ms=int(o.heartbeat_interval * 1000),
            rebalance_timeout_ms=int(max(o.session_timeout, o.drain_timeout + 5) * 1000),
            fetch_max_wait_ms=o.fetch_max_wait_ms,
        )
        self._slot = await start_as_member(self._consumer, o.member_dir, o.group_id)
        self._consumer.subscribe([o.names.alerts], listener=_Listener(self))
        self._tasks = [
            asyncio.create_task(self._run(), name="delivery-loop"),
            asyncio.create_task(self._committer(), name="delivery-commits"),
        ]
        log.info(
            "delivery started",
            receivers=[c.name for c in self._channels],
            group=o.group_id,
            notification_log=len(self.log),
        )

    async def stop(self) -> None:
        """Graceful: stop reading, drain for up to ``drain_timeout``, commit, leave."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(Exception):
            await self._release()
        for part in (self._consumer, self.log, self._client):
            if part is None:
                continue
            with contextlib.suppress(Exception):
                await (part.aclose() if isinstance(part, httpx.AsyncClient) else part.stop())
        if self._slot is not None:  # left the group: the id is not to be reused
            self._slot.release(clear=True)
        log.info("delivery stopped", **self.counts)

    def _joined(self) -> None:
        if self._slot is not None:
            self._slot.record(member_id_of(self._consumer))

    async def wait(self) -> None:
        """Until the loop ends (stop, or a failure)."""
        if self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await self._tasks[0]

    @property
    def pending(self) -> int:
        """Records submitted and not yet acked."""
        return self._state.dispatcher.pending if self._state is not None else 0

    @property
    def committed(self) -> int | None:
        """The last offset this holding committed (next record to read), if any."""
        return self._committed

    # -- the loop -------------------------------------------------------------------------

    async def _run(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        try:
            while True:
                room = self.options.max_pending - self.pending
                if self.tp in consumer.assignment():
                    if room > 0:
                        consumer.resume(self.tp)
                        if self.pending <= self.options.max_pending // 2:
                            self._throttled = False  # a new episode may be logged
                    else:
                        consumer.pause(self.tp)  # keep polling: stay in the group
                        self._backpressure()
                batch = await consumer.getmany(
                    timeout_ms=self.options.fetch_max_wait_ms, max_records=max(room, 1)
                )
                for records in batch.values():
                    for record in records:
                        if not await self._submit(record):
                            # aiokafka fetches as soon as it assigns, before our listener
                            # has caught the log up: read these again once it has.
                            if self.tp in consumer.assignment():
                                consumer.seek(self.tp, record.offset)
                            await asyncio.sleep(0.05)
                            break
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.failure = exc
            log.exception("delivery loop failed")
            raise

    def _backpressure(self) -> None:
        """The queue limit bit: we read no more until records are delivered. Submitting
        never reaches the dispatcher's own limit (we fetch at most the room left), so the
        log line and the metric are here, once per episode: until pending falls to half
        the limit, a slow receiver would otherwise log one line per record."""
        if self._throttled:
            return
        self._throttled = True
        self.counts["backpressure"] += 1
        log.warning(
            "alerts.backpressure", pending=self.pending, max_pending=self.options.max_pending
        )
        if self._metrics is not None:
            self._metrics.backpressure(self.pending)

    async def _submit(self, msg) -> bool:
        """Hand one record to the dispatcher; False when no holding is ready to take it."""
        state = self._state
        if state is None or state.draining:
            return False
        try:
            state.tracker.track(msg.offset)
        except ValueError:  # fetched twice in one holding: already submitted
            return True
        ack = self._ack_for(state, msg.offset)
        try:
            record = AlertRecord.from_json(msg.value or b"")
        except (ValidationError, ValueError) as exc:
            self.counts["malformed"] += 1
            log.error(
                "alert record malformed; skipped",
                offset=msg.offset,
                error=str(exc).splitlines()[0][:200],
            )
            ack()
            return True
        quiet = is_quiet(msg.headers)
        self.counts["quiet" if quiet else "submitted"] += 1
        await state.dispatcher.submit(record, ack, deliver=not quiet)
        return True

    def _ack_for(self, state: _Assignment, offset: int):
        def ack() -> None:
            if state is not self._state:
                return  # an earlier holding's record: its offset is not ours to commit
            position = state.tracker.done(offset)
            if position is not None:
                self._want = position
                self._commit_needed.set()

        return ack

    async def _committer(self) -> None:
        while True:
            await self._commit_needed.wait()
            self._commit_needed.clear()
            if not await self._commit():
                await asyncio.sleep(0.5)
                self._commit_needed.set()

    async def _commit(self) -> bool:
        """Commit the acked prefix if it moved; False when the broker refused (retry)."""
        async with self._commit_lock:
            want, consumer = self._want, self._consumer
            if want is None or consumer is None or want == self._committed:
                return True
            try:
                await consumer.commit({self.tp: want})
            except KafkaError as exc:  # a rebalance under way, or the group moved on
                log.warning("delivery commit failed", offset=want, error=type(exc).__name__)
                return False
            self._committed = want
            self.counts["commits"] += 1
            return True

    # -- rebalances -----------------------------------------------------------------------

    async def _take(self, assigned: list[TopicPartition]) -> None:
        if self.tp not in assigned or self._state is not None:
            return
        for attempt in range(1, 6):
            try:
                caught_up = await self.log.catch_up()  # what the previous holder wrote
                break
            except (KafkaError, OSError, TimeoutError) as exc:
                # Without the log we cannot tell what was told: never deliver blind.
                log.warning("notification log catch-up failed", attempt=attempt, error=str(exc))
                if attempt == 5:
                    self.failure = exc
                    for task in self._tasks[:1]:
                        task.cancel()  # wait() returns: the process exits 1, is restarted
                    return
                await asyncio.sleep(attempt)
        self._want = self._committed = None
        self._state = _Assignment(
            Dispatcher(
                self._channels,
                self.options.config.router,
                self.log,
                max_pending=self.options.max_pending,
                metrics=self._metrics,
            )
        )
        self.assigned.set()
        log.info("delivery assigned", notification_log_read=caught_up, keys=len(self.log))

    async def _release(self) -> None:
        state = self._state
        if state is None:
            return
        state.draining = True
        self.assigned.clear()
        try:
            await asyncio.wait_for(state.dispatcher.join(), self.options.drain_timeout)
        except TimeoutError:
            log.warning(
                "delivery drain timed out; open records will be read again",
                pending=state.dispatcher.pending,
            )
        await state.dispatcher.aclose()
        await self._commit()
        self._state = None
        log.info("delivery released", committed=self._committed)
