"""The streaming worker: input topics → engine → alerts and dead-letter topics.

One adapter around the pure engine (docs/architecture.md has the picture):

- **Read everything, in event-time order.** A group-less consumer is assigned every input
  partition; ``Merge`` orders records across topics so cross-topic rules (a spend naming a
  contract) see what a file in time order would show.
- **Publish only what we lease.** ``LeaseKeeper`` divides client leases among the workers;
  a record for client ``c`` goes out only from the holder of ``lease_of(c)``.
- **At least once, idempotent by event id.** Positions live in snapshots together with the
  state and the leases whose records were flushed; after a crash or a takeover the worker
  restores the right snapshot and re-applies what followed, so records may repeat on the
  alerts topic but none is lost. The engine drops repeated ``(source, id)``.
- **Fail over without a human.** A produce that fails rewinds to the last checkpoint and
  tries again; the leases of a dead worker move to the others after its session expires.

Batches, not events: each loop turn fetches up to ``max_records`` records, applies them,
and hands every output to the producer without waiting for acks (the checkpoint waits).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import gc
import os
import pickle
import socket
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from streams.agents.leases import LeaseKeeper, lease_of
from streams.agents.merge import Merge
from streams.agents.snapshot_key import MAC_BYTES, SnapshotKey
from streams.agents.snapshots import (
    Marker,
    SnapshotRejected,
    SnapshotStore,
    choose_marker,
    made_in_child,
)
from streams.engine import AlertRecord, Engine, EngineConfig
from streams.engine.engine import Allocation
from streams.engine.provenance import Provenance
from streams.engine.records import format_time
from streams.events import Rejection, decode
from streams.events.fast import fast_decode, flatten
from streams.events.kafka_binding import cloudevent_headers, structured
from streams.kafka.clients import make_consumer, make_producer
from streams.kafka.headers import alert_headers, dead_letter_headers
from streams.kafka.partitions import read_to_end
from streams.kafka.topics import TopicNames, default_topics, ensure_topics
from streams.metrics import Metrics

__all__ = ["Worker", "WorkerOptions", "tune_gc"]

log = structlog.get_logger("stakewatch.worker")

Positions = dict[tuple[str, int], int]


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    bootstrap: str
    names: TopicNames = field(default_factory=TopicNames)
    config: EngineConfig = field(default_factory=EngineConfig)
    group_id: str = "stakewatch-worker"
    worker_id: str = ""
    session_timeout: float = 6.0
    heartbeat_interval: float = 1.0
    snapshot_interval: float = 5.0
    partitions: int = 8
    replication: int = 1  # replicas of a topic it has to create (STAKEWATCH_REPLICATION_FACTOR)
    max_records: int = 10_000
    fetch_max_wait_ms: int = 100
    merge_grace: float = 0.2  # live edge: wait for earlier records on idle partitions, s
    client: Mapping[str, Any] = field(default_factory=dict)  # aiokafka SASL/SSL options
    broker_instance: str = ""  # embedded mode: which broker process (snapshots are fenced)
    member_dir: Path | None = None  # rejoin as the crashed predecessor (agents/membership.py)
    snapshot_key: SnapshotKey | None = None  # signs snapshots; None: none written or read


@dataclass(slots=True)
class _Checkpoint:
    blob: bytes | memoryview | None  # None: the empty engine
    positions: Positions
    marker: Marker | None = None


class Worker:
    """Start with ``await start()``, stop with ``await stop()``; read state between."""

    def __init__(self, options: WorkerOptions, metrics: Metrics | None = None) -> None:
        self.options = options
        self.names = options.names
        self.worker_id = (
            options.worker_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        )
        self.metrics = metrics
        self.engine = Engine(options.config)
        self.provenance = Provenance()
        self.leases: frozenset[int] = frozenset()
        self.latest: dict[str, AlertRecord] = {}  # last record per open conflict (all leases)
        self.listeners: list[Callable[[AlertRecord], None]] = []  # every record, every lease
        self.ready = asyncio.Event()
        self.assigned = asyncio.Event()
        self.counts: Counter[str] = Counter()
        self.n_leases = options.partitions
        self._lock = asyncio.Lock()
        self._generation = 0
        self._positions: Positions = {}
        self._seek_to: Positions | None = None  # set by a reset, done by the loop
        self._partitions: list[TopicPartition] = []
        self._merge: Merge | None = None
        self._futures: list[asyncio.Future] = []
        self._checkpoint: _Checkpoint = _Checkpoint(None, {})
        self._last_snapshot = 0.0
        self._snapshot_cost = 0.0
        self._snapshot_task: asyncio.Task | None = None
        self._last_export = 0.0
        self._last_progress_log = 0.0
        self._fetch_clock = 0.0  # seconds spent waiting in fetches (the merge's grace clock)
        self._stopping = False
        self._task: asyncio.Task | None = None
        self._rank = {t: i for i, t in enumerate(self.names.inputs)}
        self.store = SnapshotStore(
            options.bootstrap,
            self.names.snapshots,
            self.worker_id,
            client=options.client,
            broker=options.broker_instance,
            key=options.snapshot_key,
        )
        self._producer: AIOKafkaProducer | None = None
        self._reader: AIOKafkaConsumer | None = None
        self._keeper: LeaseKeeper | None = None
        self.failure: BaseException | None = None
        self.restored: str | None = None  # the snapshot this worker last restored
        self.rules = rules_fingerprint(options.config)
        self._since: int | None = None  # set by a rebuild from a time: skip older records
        self._reconcile = False

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        o = self.options
        self._set_state("starting")
        if not self.store.enabled:
            log.warning(
                "snapshots off: STAKEWATCH_SNAPSHOT_KEY is not set, so this worker writes "
                "and reads none and replays the event topics from the start whenever it "
                "starts or takes over leases",
                worker=self.worker_id,
            )
        await ensure_topics(
            o.bootstrap,
            default_topics(self.names.prefix, o.partitions, o.replication),
            client=o.client,
        )
        self._producer = make_producer(
            o.bootstrap,
            o.client,
            linger_ms=5,
            max_request_size=4 * 1024 * 1024,
            request_timeout_ms=30_000,
        )
        await self._producer.start()
        self._reader = make_consumer(
            o.bootstrap,
            o.client,
            enable_auto_commit=False,
            fetch_max_wait_ms=o.fetch_max_wait_ms,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=1024 * 1024,
        )
        await self._reader.start()
        await self._reader.topics()  # metadata, so partitions_for_topic answers
        self._partitions = [
            TopicPartition(t, p)
            for t in self.names.inputs
            for p in sorted(self._reader.partitions_for_topic(t) or ())
        ]
        self.n_leases = len(self._reader.partitions_for_topic(self.names.leases) or ()) or 1
        self._reader.assign(self._partitions)
        self._reset(None, {})
        self._keeper = LeaseKeeper(
            o.bootstrap,
            self.names.leases,
            o.group_id,
            self._on_revoked,
            self._on_assigned,
            session_timeout=o.session_timeout,
            heartbeat_interval=o.heartbeat_interval,
            client_id=self.worker_id,
            client=o.client,
            member_dir=o.member_dir,
        )
        await self._keeper.start()
        self._task = asyncio.create_task(self._run(), name="worker-loop")
        log.info("worker started", worker=self.worker_id, partitions=len(self._partitions))

    async def stop(self) -> None:
        """Graceful stop: finish the batch, snapshot, leave the group."""
        self._stopping = True
        self._set_state("stopping")
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await self._snapshot_settled()
        try:
            if self._producer is not None and self.assigned.is_set():
                async with self._lock:
                    await self._take_checkpoint()
        except Exception as exc:  # the next start replays from an older snapshot
            log.warning("final snapshot failed", error=str(exc))
        for part in (self._keeper, self._reader, self._producer):
            if part is not None:
                with contextlib.suppress(Exception):
                    await part.stop()
        log.info("worker stopped", worker=self.worker_id, **self.counts)

    async def wait(self) -> None:
        """Until the loop ends (stop, or a failure it cannot recover from)."""
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    # -- the loop -------------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            await self.assigned.wait()
            self._set_state("recovering")
            reader = self._reader
            assert reader is not None
            backoff = 0.5
            while not self._stopping:
                generation = self._generation
                try:
                    self._seek_pending(reader)
                    waited_from = time.monotonic()
                    batch = await reader.getmany(
                        timeout_ms=self._fetch_wait_ms(), max_records=self.options.max_records
                    )
                    self._fetch_clock += time.monotonic() - waited_from
                    async with self._lock:
                        if generation != self._generation:
                            # Rewound meanwhile: these records may come from either side
                            # of the rewind; the next turn seeks again and refetches.
                            continue
                        await self._step(batch)
                    backoff = 0.5
                except KafkaError as exc:
                    # A broker frozen past a request timeout fails a send or a snapshot
                    # write: go back to the last checkpoint and try again, no restart.
                    log.warning(
                        "kafka error; rewinding to the last checkpoint",
                        error=repr(exc),
                        retry_in=backoff,
                    )
                    self.counts["rewinds"] += 1
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 10.0)
                    async with self._lock:
                        self._rewind(self._checkpoint)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.failure = exc
            log.exception("worker loop failed", worker=self.worker_id)
            raise

    def _fetch_wait_ms(self) -> int:
        """How long a fetch may wait for records: until the next buffered record's grace
        ends, at most ``fetch_max_wait_ms`` (at least 1 ms: 0 would spin)."""
        wait = self.options.fetch_max_wait_ms
        merge = self._merge
        if merge is not None and merge.buffered:
            due = merge.next_release_in(self._fetch_clock)
            if due is not None:
                wait = min(wait, max(1, int(due * 1000) + 1))
        return wait

    async def _step(self, batch) -> None:
        merge = self._merge
        reader = self._reader
        assert merge is not None and reader is not None
        # The merge's grace runs on the fetch clock: time spent waiting for the broker. A
        # loop busy for longer than the grace (a big batch, a fork, other tasks) has not
        # fetched meanwhile, so the grace must not run out while an earlier record sits
        # unfetched on an idle partition (the full-size receivers campaign caught that).
        clock = self._fetch_clock
        for records in batch.values():  # aiokafka ConsumerRecords: no copies on the way
            merge.feed(records, clock)
        merge.set_highwaters(
            {(tp.topic, tp.partition): reader.highwater(tp) for tp in self._partitions}
        )
        outputs = self._apply(merge.release(clock))
        producer = self._producer
        assert producer is not None
        for topic, value, key, headers in outputs:
            self._futures.append(await producer.send(topic, value, key=key, headers=headers))
        if await self._failed_sends():
            return
        if self.metrics is not None:
            self._export_lag(reader)
        now = time.monotonic()
        if not self.ready.is_set() and not merge.buffered and not merge.waiting_on():
            if self._reconcile:
                await self._reconcile_alerts()
            self.ready.set()
            self._set_state("running")
            log.info("worker caught up", worker=self.worker_id, applied=self.counts["applied"])
        elif not self.ready.is_set() and now - self._last_progress_log >= 5.0:
            self._last_progress_log = now
            log.info(
                "catching up",
                worker=self.worker_id,
                applied=self.counts["applied"],
                buffered=merge.buffered,
                waiting_on=[f"{t}/{p}" for t, p in merge.waiting_on()][:8],
                behind={
                    f"{tp.topic}/{tp.partition}": (self._positions[(tp.topic, tp.partition)], hw)
                    for tp in self._partitions
                    if (hw := reader.highwater(tp)) is None
                    or hw > self._positions[(tp.topic, tp.partition)]
                },
            )
        interval = max(self.options.snapshot_interval, 2 * self._snapshot_cost)
        writing = self._snapshot_task is not None and not self._snapshot_task.done()
        if not writing and now - self._last_snapshot >= interval and self._dirty():
            await self._take_checkpoint(wait=False)
        self._export_state()

    def _apply(self, records: Iterable[Any]) -> list[tuple[str, bytes, bytes | None, list]]:
        """Apply records (in merged order) to the engine; the records to produce, already
        filtered by lease.

        The hot path: most records are spends of common shape, so a record costs the fast
        decoder, the engine, the provenance table and a few dict operations; metrics are
        tallied here and handed over once per batch.
        """
        out: list[tuple[str, bytes, bytes | None, list]] = []
        apply_flat = self.engine.apply_flat
        observe = self.provenance.observe_flat
        leases = self.leases
        n = self.n_leases
        metrics = self.metrics
        positions = self._positions
        wall = time.time()
        now = int(wall * 1_000_000)  # the one wall-clock reading the engine gets (`future`)
        since = self._since
        applied: Counter[tuple[str, str]] = Counter()
        latencies: dict[str, list[float]] = {}
        n_applied = 0
        for r in records:
            topic = r.topic
            positions[(topic, r.partition)] = r.offset + 1
            if since is not None and r.timestamp < since:
                self.counts["skipped"] += 1
                continue
            raw = r.value or b""
            if r.headers:  # binary content mode: the same event, structured (SPEC v2 §1)
                raw = structured(raw, r.headers)
                if type(raw) is Rejection:
                    self._rejected(r, raw, None, out)
                    continue
            flat = fast_decode(raw)
            if flat is None:
                event = decode(raw)
                if isinstance(event, Rejection):
                    self._rejected(r, event, None, out)
                    continue
                flat = flatten(event)
            outcome = apply_flat(flat, now)
            if outcome.rejection is not None:
                self._rejected(r, outcome.rejection, flat[0], out)
                continue
            observe(flat)
            n_applied += 1
            if metrics is not None:
                applied[(topic, flat[0])] += 1
                lag = wall - r.timestamp / 1000
                if topic in latencies:
                    latencies[topic].append(lag)
                else:
                    latencies[topic] = [lag]
            if outcome.records:
                self._publish(r, outcome.records, wall, leases, n, out)
            if outcome.allocations:
                self._report_allocations(outcome.allocations)
        self.counts["applied"] += n_applied
        if metrics is not None:
            metrics.observe_applied_batch(applied, latencies)
        return out

    def _report_allocations(self, allocations: Iterable[Allocation]) -> None:
        """One log line per asset entering or leaving over-allocation (SPEC §2); the gauge
        follows in `_export_state`."""
        for a in allocations:
            log.warning(
                "asset over-allocated" if a.over else "asset no longer over-allocated",
                asset=a.asset,
                claimed_percent=round(a.claimed, 6),
                claimed_held_percent=round(a.claimed_held, 6),
            )

    def _rejected(
        self,
        r: Any,
        rejection: Rejection,
        event_type: str | None,
        out: list[tuple[str, bytes, bytes | None, list]],
    ) -> None:
        """Dead-letter a rejected record (if its partition is ours) and count it: the
        original value and headers (a binary record's attributes), then the reason."""
        self.counts["rejected"] += 1
        owned = r.partition % self.n_leases in self.leases
        if owned:
            reason = dead_letter_headers(
                rejection, source_topic=r.topic, partition=r.partition, offset=r.offset
            )
            headers = [*(r.headers or ()), *reason]
            out.append((self.names.dead_letter, r.value or b"", r.key, headers))
            log.warning(
                "dead letter",
                reason=str(rejection),
                topic=r.topic,
                partition=r.partition,
                offset=r.offset,
            )
        metrics = self.metrics
        if metrics is not None:
            if rejection.code == "duplicate":
                metrics.observe_duplicate(r.topic, event_type or "_other")
                if owned:
                    metrics.observe_dead_letter(r.topic, rejection.code)
            else:
                metrics.observe_rejected(r.topic, event_type, rejection.code, dead_lettered=owned)

    def _publish(
        self,
        r: Any,
        records: Iterable[AlertRecord],
        wall: float,
        leases: frozenset[int],
        n: int,
        out: list[tuple[str, bytes, bytes | None, list]],
    ) -> None:
        """Keep the latest record per open conflict; queue ours for the alerts topic."""
        metrics = self.metrics
        for record in records:
            if record.status == "firing":
                self.latest[record.dedup_key] = record
            else:
                self.latest.pop(record.dedup_key, None)
            for listener in self.listeners:
                listener(record)
            if lease_of(record.client, n) not in leases:
                continue
            self.counts[f"alerts_{record.status}"] += 1
            log.info(
                "alert",
                dedup_key=record.dedup_key,
                status=record.status,
                severity=record.severity,
                event_id=record.event_id,
                topic=r.topic,
                partition=r.partition,
                offset=r.offset,
            )
            headers = alert_headers(r) + self._cloudevent(
                record, f"{r.topic}/{r.partition}/{r.offset}"
            )
            out.append((self.names.alerts, record.to_json(), record.dedup_key.encode(), headers))
            if metrics is not None:
                metrics.observe_alert(
                    record.status, record.severity, max(wall - r.timestamp / 1000, 0.0)
                )

    def _cloudevent(self, record: AlertRecord, cause: str) -> list[tuple[str, bytes]]:
        """The record's CloudEvents attributes (binary mode, docs/architecture.md): id
        unique per record and the same when a replay publishes it again."""
        return cloudevent_headers(
            record.status,
            f"/stakewatch/{self.names.prefix}",
            f"{cause}/{record.dedup_key}",
            record.event_time,
            record.dedup_key,
        )

    async def _failed_sends(self) -> bool:
        """Prune acknowledged sends; on a failed one, rewind to the last checkpoint."""
        pending = []
        failed = None
        for f in self._futures:
            if not f.done():
                pending.append(f)
            elif f.exception() is not None and failed is None:
                failed = f.exception()
        self._futures = pending
        if failed is None:
            return False
        log.warning("produce failed; rewinding to the last checkpoint", error=str(failed))
        self.counts["rewinds"] += 1
        self._rewind(self._checkpoint)
        return True

    def _dirty(self) -> bool:
        return self._positions != self._checkpoint.positions

    # -- checkpoints and rewinds -----------------------------------------------------------

    async def _take_checkpoint(self, *, wait: bool = True) -> None:
        """Flush every output, then snapshot state + positions + leases (in that order).

        The state is pickled in a forked child (``made_in_child``): the state as of the
        fork, with the positions and leases read at the same moment, while the loop goes
        on. ``wait=False`` (the loop's periodic snapshots) returns once the child runs;
        the write finishes in the background and a failure only costs this snapshot.
        ``wait=True`` (revoke, stop) returns once the marker is on the topic. One
        snapshot at a time.
        """
        await self._snapshot_settled()
        producer = self._producer
        assert producer is not None
        started = time.monotonic()
        await producer.flush()
        if self._futures:
            await asyncio.gather(*self._futures, return_exceptions=True)
        if await self._failed_sends():
            return
        positions, leases, generation = dict(self._positions), self.leases, self._generation
        engine, latest, since, provenance = self.engine, self.latest, self._since, self.provenance
        key = self.options.snapshot_key

        def make() -> tuple[bytes, ...]:
            state = (engine.snapshot(), latest, since, provenance)
            blob = pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
            return (key.sign_blob(blob), blob) if key is not None else (blob,)

        self._last_snapshot = time.monotonic()
        job = asyncio.ensure_future(made_in_child(make))
        task = asyncio.create_task(
            self._write_snapshot(job, positions, leases, generation, started),
            name="snapshot",
        )
        self._snapshot_task = task
        if wait:
            await task
        else:
            task.add_done_callback(_log_snapshot_failure)

    async def _snapshot_settled(self) -> None:
        """Wait for a snapshot still being written (its failure was logged already)."""
        task, self._snapshot_task = self._snapshot_task, None
        if task is not None and not task.done():
            with contextlib.suppress(Exception):
                await task

    async def _write_snapshot(
        self,
        job: asyncio.Future[bytes],
        positions: Positions,
        leases: frozenset[int],
        generation: int,
        started: float,
    ) -> None:
        producer = self._producer
        assert producer is not None
        made = await job
        marker = None
        if self.store.enabled:  # signed in the child: its MAC, then the bytes it signs
            blob: bytes | memoryview = memoryview(made)[MAC_BYTES:]
            marker = await self.store.write(
                producer, blob, positions, leases, rules=self.rules, blob_mac=made[:MAC_BYTES]
            )
            self.counts["snapshots"] += 1
        else:  # no key: kept for rewinds only
            blob = made
        if generation == self._generation:  # not rewound meanwhile: the point to go back to
            self._checkpoint = _Checkpoint(blob, positions, marker)
        self._snapshot_cost = time.monotonic() - started
        log.debug(
            "snapshot written" if marker is not None else "checkpoint kept (snapshots off)",
            worker=self.worker_id,
            bytes=len(blob),
            leases=sorted(leases),
            seconds=round(self._snapshot_cost, 3),
        )

    def _reset(self, blob: bytes | None, positions: Positions) -> None:
        """Load state and seek every input partition to where it left off."""
        if blob:
            with _no_gc():
                engine_blob, latest, since, provenance = pickle.loads(blob)
                engine = Engine.restore(engine_blob, self.options.config)
            self.engine = engine
            self.latest, self._since, self.provenance = latest, since, provenance
            self._last_snapshot = time.monotonic()  # the state is on the topic already
        else:
            self.engine, self.latest = Engine(self.options.config), {}
            self.provenance = Provenance()
        self._positions = {
            (tp.topic, tp.partition): positions.get((tp.topic, tp.partition), 0)
            for tp in self._partitions
        }
        # Seeking is left to the loop, before its next fetch: a seek made here, while a
        # fetch is in flight, can be overtaken by records fetched from the new position
        # that the loop then drops as stale — the reader would skip them for good.
        self._seek_to = dict(self._positions)
        self._merge = Merge(self._positions, self._rank, self.options.merge_grace)
        self._generation += 1

    def _seek_pending(self, reader: AIOKafkaConsumer) -> None:
        """Move the reader to where the last reset left the positions (no fetch in flight)."""
        seek_to, self._seek_to = self._seek_to, None
        if seek_to is not None:
            for tp in self._partitions:
                reader.seek(tp, seek_to[(tp.topic, tp.partition)])

    def _rewind(self, checkpoint: _Checkpoint) -> None:
        if checkpoint.blob is None:
            self._reconcile = True  # a replay from scratch: check the alerts topic after
        self._reset(checkpoint.blob, checkpoint.positions)
        self._checkpoint = _Checkpoint(checkpoint.blob, dict(self._positions), checkpoint.marker)
        self.ready.clear()
        self._set_state("recovering")

    async def _on_revoked(self, revoked: frozenset[int]) -> None:
        if not revoked:
            return
        async with self._lock:
            if self.assigned.is_set():
                try:
                    await self._take_checkpoint()
                except Exception as exc:
                    log.warning("snapshot on revoke failed", error=str(exc))
            self.leases = self.leases - revoked
        if self.metrics is not None:
            self.metrics.observe_rebalance()
        log.info("leases revoked", worker=self.worker_id, revoked=sorted(revoked))

    async def _on_assigned(self, assigned: frozenset[int]) -> None:
        try:
            async with self._lock:
                gained = assigned - self.leases
                first = not self.assigned.is_set()
                if first or gained:
                    await self._restore_for(gained, first)
                self.leases = assigned
                self.assigned.set()
            log.info(
                "leases assigned",
                worker=self.worker_id,
                leases=sorted(assigned),
                gained=sorted(gained),
            )
        except Exception as exc:
            self.failure = exc
            log.exception("taking over leases failed", worker=self.worker_id)
            if self._task is not None:
                self._task.cancel()

    async def _restore_for(self, gained: frozenset[int], first: bool) -> None:
        """Make sure every record of a gained lease after its last flush gets published."""
        wanted = gained if gained else frozenset(range(self.n_leases)) if first else None
        if wanted is None:
            return
        markers = await self.store.markers(needed=wanted, rules=self.rules)
        while True:
            marker = choose_marker(markers, wanted, self.rules, self.options.broker_instance)
            if marker is None or marker.is_reset:
                break
            behind = all(self._positions.get(tp, 0) <= o for tp, o in marker.positions.items())
            if not first and behind:
                return  # we are behind the old holder's flush point: nothing was skipped
            try:
                blob = await self.store.load(marker)
                break
            except SnapshotRejected as exc:  # forged chunks: never decoded; an older one?
                log.warning(
                    "snapshot failed verification; not decoded, trying an older one or a replay",
                    worker=self.worker_id,
                    snapshot=marker.snapshot_id,
                    offset=marker.offset,
                    error=str(exc),
                )
                markers = [m for m in markers if m.offset != marker.offset]
        if marker is None:
            if first or any(self._positions.values()):
                log.info(
                    "no snapshot covers the leases under these rules; replaying from the start",
                    worker=self.worker_id,
                )
                self._rewind(_Checkpoint(None, {}))
            return
        if marker.is_reset:
            log.info("rebuild requested; replaying from the start", since_ms=marker.since)
            self._rewind(_Checkpoint(None, {}))
            self._since = marker.since
            self.restored = marker.snapshot_id
            return
        log.info(
            "restoring snapshot",
            worker=self.worker_id,
            snapshot=marker.snapshot_id,
            bytes=len(blob),
            events=marker.progress,
        )
        try:
            self._rewind(_Checkpoint(blob, dict(marker.positions), marker))
        except Exception as exc:  # e.g. written by a version with another state layout
            log.warning(
                "snapshot unusable; replaying from the start",
                snapshot=marker.snapshot_id,
                error=repr(exc)[:300],
            )
            self._rewind(_Checkpoint(None, {}))
            return
        self.restored = marker.snapshot_id

    async def _reconcile_alerts(self) -> None:
        """After a replay from scratch, resolve what the alerts topic still shows open but
        the rebuilt state does not (a new rule set, or a rebuild from a time, never fires
        those again, so no resolved would follow). Runs for this worker's leases only."""
        self._reconcile = False
        producer = self._producer
        assert producer is not None
        await producer.flush()  # the topic must show what the replay just sent
        consumer = make_consumer(
            self.options.bootstrap,
            self.options.client,
            enable_auto_commit=False,
            fetch_max_wait_ms=50,
        )
        await consumer.start()
        try:
            tp = TopicPartition(self.names.alerts, 0)
            consumer.assign([tp])
            published = await read_to_end(consumer, tp)
        finally:
            await consumer.stop()
        last: dict[str, dict] = {}
        for record in published:
            with contextlib.suppress(orjson.JSONDecodeError, KeyError, TypeError):
                doc = orjson.loads(record.value)
                last[doc["dedup_key"]] = doc
        when = self.engine.watermark
        stamp = (
            format_time(dt.datetime.fromtimestamp(when / 1e6, dt.UTC)) if when is not None else ""
        )
        stale = [
            doc
            for key, doc in sorted(last.items())
            if doc.get("status") == "firing"
            and key not in self.engine.open
            and self.owns(doc.get("client", ""))
        ]
        for doc in stale:
            resolved = {**doc, "status": "resolved", "event_id": "rebuild", "event_time": stamp}
            key = doc["dedup_key"]
            headers = cloudevent_headers(
                "resolved", f"/stakewatch/{self.names.prefix}", f"rebuild/{stamp}/{key}", stamp, key
            )
            self._futures.append(
                await producer.send(
                    self.names.alerts, orjson.dumps(resolved), key=key.encode(), headers=headers
                )
            )
            self.counts["alerts_resolved"] += 1
            log.info(
                "alert", dedup_key=key, status="resolved", reason="no longer open after rebuild"
            )
        if stale:
            log.info("reconciled alerts topic after a rebuild", resolved=len(stale))

    # -- reporting ------------------------------------------------------------------------

    def owns(self, client: str) -> bool:
        return lease_of(client, self.n_leases) in self.leases

    def open_records(self) -> list[AlertRecord]:
        """Latest firing record of each open conflict this worker publishes for."""
        return [r for r in self.latest.values() if self.owns(r.client)]

    def _export_state(self) -> None:
        m = self.metrics
        if m is None:
            return
        mine = self.open_records()
        m.set_open_conflicts(Counter(r.severity for r in mine))
        now = time.monotonic()
        if now - self._last_export < 1.0:
            return
        self._last_export = now
        headline = self.engine.headline
        # Figures move without a transition (spend ages, an announced stake closes: no alert
        # record), so the dashboards get them at the watermark, as /v1/conflicts shows them.
        refreshed = []
        for r in mine:
            stake, controlled, pending, spend = headline(r.client, r.vendor, r.rival)
            refreshed.append(
                dataclasses.replace(
                    r, stake=stake, controlled=controlled, pending=pending, spend_365d=spend
                )
            )
        m.set_conflicts(refreshed)
        m.set_table_sizes(
            {
                "holdings": len(self.engine.graph.holdings),
                "contracts": len(self.engine.rel.contracts),
                "open_conflicts": len(self.engine.open),
            }
        )
        m.set_overallocated(len(self.engine.graph.overallocated))

    def _export_lag(self, reader: AIOKafkaConsumer) -> None:
        lag: Counter[str] = Counter()
        for tp in self._partitions:
            hw = reader.highwater(tp)
            if hw is not None:
                lag[tp.topic] += max(hw - self._positions[(tp.topic, tp.partition)], 0)
        assert self.metrics is not None
        self.metrics.set_consumer_lag(lag)

    def _set_state(self, state: str) -> None:
        if self.metrics is not None:
            self.metrics.set_recovery_state(state)


def tune_gc() -> None:
    """Collector thresholds for a process that runs a worker (`serve`, the bench's worker
    peer; process-wide, so not the `Worker`'s to set). The worker's heap is millions of
    long-lived objects (the state) and a stream of short-lived ones (records). With
    CPython's defaults a young collection runs every 700 allocations and a full one often
    enough to rescan the state again and again; these thresholds cut the collector's share
    of the hot path (+8 % events/s on 1M events)."""
    gc.set_threshold(200_000, 50, 1000)


@contextlib.contextmanager
def _no_gc():
    """Unpickling a large state allocates millions of objects, none of them garbage: with
    the cyclic collector on, it runs over and over on the growing heap (a third of the
    time of a restore); it is back on, and runs as usual, once the state is built."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _log_snapshot_failure(task: asyncio.Task) -> None:
    """A background snapshot that failed: the next one tries again (the loop's rewind to
    the last checkpoint covers lost sends; a lost snapshot only costs replay time)."""
    if not task.cancelled() and task.exception() is not None:
        log.warning("snapshot failed", error=repr(task.exception()))


def rules_fingerprint(config: EngineConfig) -> str:
    """A stable digest of the rule set, stored with each snapshot."""
    return config.fingerprint()


def _default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
