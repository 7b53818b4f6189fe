"""The streaming worker: input topics → engine → alerts and dead-letter topics.

The composition of parts with one job each (docs/architecture.md has the picture):

- ``ingest.Ingest`` — read every input partition without a group, in event-time order;
- ``apply.Applier`` — records through the ledger (decode, engine, evidence, latest record),
  and what to publish for them, filtered by the leases ``leases.LeaseKeeper`` gives;
- ``outbox.Outbox`` — publish without waiting per record; a failed send is found between
  batches and rewinds the worker to its last checkpoint (records repeat, none is lost);
- ``checkpoints.Checkpoints`` — state + positions + leases, snapshotted together, restored
  when leases move, the point a rewind goes back to;
- ``reconcile`` — after a replay from scratch, resolve what the alerts topic shows open;
- ``gauges.StateGauges`` — the state on the dashboards' gauges.

This class holds the state those parts share (the ledger, the positions, the leases), runs
the loop and answers the lease callbacks. Batches, not events: each turn fetches up to
``max_records`` records, applies them and hands the outputs over without waiting for acks.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import socket
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from aiokafka.errors import KafkaError

from streams.agents import reconcile
from streams.agents.apply import Applier
from streams.agents.checkpoints import (
    Checkpoint,
    Checkpoints,
    load_state,
    restore_point,
    snapshot_rules,
)
from streams.agents.clock import SYSTEM_CLOCK, Clock
from streams.agents.gauges import StateGauges
from streams.agents.ingest import Ingest
from streams.agents.leases import Held, LeaseKeeper
from streams.agents.outbox import Outbox
from streams.agents.snapshot_key import SnapshotKey
from streams.agents.snapshots import SnapshotStore
from streams.engine import AlertRecord, Engine, EngineConfig
from streams.engine.provenance import Provenance
from streams.kafka.topics import TopicNames, default_topics, ensure_topics
from streams.metrics import Metrics

__all__ = ["Worker", "WorkerOptions"]

log = structlog.get_logger("stakewatch.worker")


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


class Worker:
    """Start with ``await start()``, stop with ``await stop()``; read state between."""

    def __init__(
        self, options: WorkerOptions, metrics: Metrics | None = None, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        o = self.options = options
        self.names = options.names
        self.worker_id = options.worker_id or _default_worker_id()
        self.metrics = metrics
        self.clock = clock
        self.ledger, self._since = load_state(None, o.config)  # _since: a rebuild's time
        self.held = Held(frozenset(), options.partitions)
        self.listeners: list[Callable[[AlertRecord], None]] = []  # every record, every lease
        self.counts: Counter[str] = Counter()
        self.ready = asyncio.Event()
        self.assigned = asyncio.Event()
        self.failure: BaseException | None = None
        self.restored: str | None = None  # the snapshot this worker last restored
        self.rules = snapshot_rules(o.config)
        self.store = SnapshotStore(
            o.bootstrap,
            self.names.snapshots,
            self.worker_id,
            client=o.client,
            broker=o.broker_instance,
            key=o.snapshot_key,
        )
        self.ingest = Ingest(
            o.bootstrap,
            self.names,
            clock,
            client=o.client,
            fetch_max_wait_ms=o.fetch_max_wait_ms,
            max_records=o.max_records,
            grace=o.merge_grace,
        )
        self.applier = Applier(self.names, clock, self.counts, self.listeners, metrics)
        self.outbox = Outbox(o.bootstrap, o.client)
        self.checkpoints = Checkpoints(
            self.store, self.rules, clock, self.counts, o.snapshot_interval
        )
        self._lock = asyncio.Lock()
        self._generation = 0  # moves at every reset: a batch or snapshot from before is stale
        self._reconcile = False
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._keeper: LeaseKeeper | None = None
        self._last_progress_log = 0.0
        self._gauges = None if metrics is None else StateGauges(metrics, clock)

    # -- what the API, the web surface and the tests read ------------------------------------

    @property
    def engine(self) -> Engine:
        return self.ledger.engine

    @property
    def provenance(self) -> Provenance:
        provenance = self.ledger.provenance
        assert provenance is not None  # a worker's ledger keeps evidence
        return provenance

    @property
    def latest(self) -> dict[str, AlertRecord]:
        """Last firing record per open conflict (all leases)."""
        return self.ledger.latest

    @property
    def leases(self) -> frozenset[int]:
        return self.held.leases

    def owns(self, client: str) -> bool:
        return self.held.owns(client)

    def open_records(self) -> list[AlertRecord]:
        """Latest firing record of each open conflict this worker publishes for."""
        return [r for r in self.latest.values() if self.owns(r.client)]

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
        topics = default_topics(self.names.prefix, o.partitions, o.replication)
        await ensure_topics(o.bootstrap, topics, client=o.client)
        await self.outbox.start()
        await self.ingest.start()
        self.held = Held(frozenset(), self.ingest.partition_count(self.names.leases) or 1)
        self._reset(Checkpoint(None, {}))
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
        log.info("worker started", worker=self.worker_id, partitions=len(self.ingest.partitions))

    async def stop(self) -> None:
        """Graceful stop: finish the batch, snapshot, leave the group."""
        self._stopping = True
        self._set_state("stopping")
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await self.checkpoints.settled()
        try:
            if self.outbox.producer is not None and self.assigned.is_set():
                async with self._lock:
                    await self._checkpoint()
        except Exception as exc:  # the next start replays from an older snapshot
            log.warning("final snapshot failed", error=str(exc))
        for part in (self._keeper, self.ingest, self.outbox):
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
            backoff = 0.5
            while not self._stopping:
                generation = self._generation
                try:
                    batch = await self.ingest.fetch()
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
                        self._rewind(self.checkpoints.last)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.failure = exc
            log.exception("worker loop failed", worker=self.worker_id)
            raise

    async def _step(self, batch: Mapping[Any, list[Any]]) -> None:
        """Apply one fetched batch, publish its outputs, and do what is due after it."""
        ingest = self.ingest
        released = ingest.release(batch)
        outputs = self.applier.apply(
            released, self.ledger, ingest.positions, self.held, self._since
        )
        await self.outbox.send(outputs)
        if self._rewound_on_failure():
            return
        if self.metrics is not None:
            self.metrics.set_consumer_lag(ingest.lag())
        if not self.ready.is_set():
            await self._catching_up()
        if self.checkpoints.due(ingest.positions != self.checkpoints.last.positions):
            await self._checkpoint(wait=False)
        self._export_state()

    async def _catching_up(self) -> None:
        """Ready once caught up (after reconciling, if a replay from scratch asks for it);
        a progress line every 5 s until then."""
        if self.ingest.caught_up:
            if self._reconcile:
                await self._reconcile_alerts()
            self.ready.set()
            self._set_state("running")
            log.info("worker caught up", worker=self.worker_id, applied=self.counts["applied"])
            return
        now = self.clock.monotonic()
        if now - self._last_progress_log >= 5.0:
            self._last_progress_log = now
            log.info(
                "catching up",
                worker=self.worker_id,
                applied=self.counts["applied"],
                **self.ingest.progress(),
            )

    def _rewound_on_failure(self) -> bool:
        """On a failed send, rewind to the last checkpoint (True: the batch is void)."""
        failed = self.outbox.failure()
        if failed is None:
            return False
        log.warning("produce failed; rewinding to the last checkpoint", error=str(failed))
        self.counts["rewinds"] += 1
        self._rewind(self.checkpoints.last)
        return True

    # -- checkpoints, resets and rewinds -----------------------------------------------------

    async def _checkpoint(self, *, wait: bool = True) -> None:
        """Flush every output, then checkpoint state + positions + leases (in that order)."""
        await self.checkpoints.settled()
        started = self.clock.monotonic()
        await self.outbox.flush()
        if self._rewound_on_failure():
            return
        producer = self.outbox.producer
        assert producer is not None
        generation = self._generation
        await self.checkpoints.take(
            producer,
            self.ledger,
            self._since,
            dict(self.ingest.positions),
            self.held.leases,
            lambda: generation == self._generation,
            started,
            wait=wait,
        )

    def _reset(self, checkpoint: Checkpoint) -> None:
        """Load a checkpoint's state and go back to its positions (the loop seeks)."""
        self.ledger, since = load_state(checkpoint.blob, self.options.config)
        if checkpoint.blob:
            self._since = since
            self.checkpoints.taken_at = self.clock.monotonic()  # on the topic already
        self.ingest.reset(checkpoint.positions)
        self._generation += 1

    def _rewind(self, checkpoint: Checkpoint) -> None:
        if checkpoint.blob is None:
            self._reconcile = True  # a replay from scratch: check the alerts topic after
        self._reset(checkpoint)
        self.checkpoints.last = Checkpoint(
            checkpoint.blob, dict(self.ingest.positions), checkpoint.marker
        )
        self.ready.clear()
        self._set_state("recovering")

    # -- leases -----------------------------------------------------------------------------

    async def _on_revoked(self, revoked: frozenset[int]) -> None:
        if not revoked:
            return
        async with self._lock:
            if self.assigned.is_set():
                try:
                    await self._checkpoint()
                except Exception as exc:
                    log.warning("snapshot on revoke failed", error=str(exc))
            self.held = dataclasses.replace(self.held, leases=self.held.leases - revoked)
        if self.metrics is not None:
            self.metrics.observe_rebalance()
        log.info("leases revoked", worker=self.worker_id, revoked=sorted(revoked))

    async def _on_assigned(self, assigned: frozenset[int]) -> None:
        try:
            async with self._lock:
                gained = assigned - self.held.leases
                first = not self.assigned.is_set()
                if first or gained:
                    await self._restore_for(gained, first)
                self.held = dataclasses.replace(self.held, leases=assigned)
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
        wanted = gained if gained else frozenset(range(self.held.count)) if first else None
        if wanted is None:
            return
        restore = await restore_point(self.store, self.rules, wanted, first, self.ingest.positions)
        if restore is None:
            return
        if restore.checkpoint is None:  # replay from the start (a rebuild marker, maybe)
            self._rewind(Checkpoint(None, {}))
            if restore.snapshot is not None:
                self._since, self.restored = restore.since, restore.snapshot
            return
        try:
            self._rewind(restore.checkpoint)
        except Exception as exc:  # e.g. written by a version with another state layout
            log.warning(
                "snapshot unusable; replaying from the start",
                snapshot=restore.snapshot,
                error=repr(exc)[:300],
            )
            self._rewind(Checkpoint(None, {}))
            return
        self.restored = restore.snapshot

    async def _reconcile_alerts(self) -> None:
        """After a replay from scratch, resolve what the alerts topic still shows open but
        the rebuilt state does not (for this worker's leases only)."""
        self._reconcile = False
        await self.outbox.flush()  # the topic must show what the replay just sent
        o = self.options
        await reconcile.publish_stale(
            self.outbox, o.bootstrap, o.client, self.names, self.engine, self.held, self.counts
        )

    # -- reporting ------------------------------------------------------------------------

    def _export_state(self) -> None:
        if self._gauges is not None:
            self._gauges.export(self.engine, self.open_records)

    def _set_state(self, state: str) -> None:
        if self.metrics is not None:
            self.metrics.set_recovery_state(state)


def _default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
