"""Checkpoints: the state with the positions and leases it reflects, and where to go back.

A checkpoint is taken after every output is flushed: the state is pickled in a forked
child (``made_in_child``) as of the fork, with the positions and leases read at the same
moment, while the loop goes on; the parent writes the bytes to the snapshots topic
(``SnapshotStore``) when snapshots are on, and keeps them as the point a failed send
rewinds to either way. One snapshot at a time; the cadence stretches to twice the last
one's cost for big states.

``restore_point`` chooses, for leases a worker gains, the newest snapshot whose writer
published for them under these rules (a forged one is skipped, never decoded), or says to
replay from the start.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import pickle
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import structlog
from aiokafka import AIOKafkaProducer

from streams import hot
from streams.agents.clock import Clock
from streams.agents.ingest import Positions
from streams.agents.snapshot_key import MAC_BYTES
from streams.agents.snapshots import (
    Marker,
    SnapshotRejected,
    SnapshotStore,
    Superseded,
    choose_marker,
    made_in_child,
)
from streams.engine import EngineConfig
from streams.engine.engine import Engine
from streams.engine.ledger import Ledger
from streams.engine.provenance import Provenance

__all__ = [
    "Checkpoint",
    "Checkpoints",
    "Restore",
    "load_state",
    "restore_point",
    "snapshot_rules",
]

log = structlog.get_logger("stakewatch.worker")


def snapshot_rules(config: EngineConfig) -> str:
    """What a snapshot's marker says it was computed under, and what a worker restores
    only when equal: the rule set's fingerprint and the hot path's build (streams/hot.py) —
    compiled and pure-Python classes pickle differently, so each build restores its own."""
    return f"{config.fingerprint()}/{hot.build()}"


@dataclass(slots=True)
class Checkpoint:
    """A state as bytes (None: the empty engine) and the positions it reflects."""

    blob: bytes | memoryview | None
    positions: Positions
    marker: Marker | None = None


def load_state(blob: bytes | memoryview | None, config: EngineConfig) -> tuple[Ledger, int | None]:
    """The ledger a checkpoint holds and its rebuild time (None: the empty engine). Raises
    for a blob of another state layout (the caller replays instead)."""
    if not blob:
        return Ledger(Engine(config), Provenance()), None
    with _no_gc():
        engine_blob, latest, since, provenance = pickle.loads(blob)
        engine = Engine.restore(engine_blob, config)
    return Ledger(engine, provenance, latest), since


class Checkpoints:
    """Takes checkpoints and keeps the last one; ``store`` writes them as snapshots."""

    def __init__(
        self,
        store: SnapshotStore,
        rules: str,
        clock: Clock,
        counts: Counter[str],
        interval: float = 5.0,
    ) -> None:
        self.store = store
        self.counts = counts  # the worker's: "snapshots" counts those on the topic
        self.rules = rules
        self.clock = clock
        self.interval = interval
        self.last = Checkpoint(None, {})
        self.taken_at = 0.0  # monotonic time of the last one (or of a restore)
        self.cost = 0.0  # seconds the last one took, fork to marker
        self._task: asyncio.Task[None] | None = None
        self.superseded = False  # a reset marker came after this worker's state: no snapshots

    def due(self, dirty: bool) -> bool:
        """Time for the loop's periodic checkpoint (none while one is being written)."""
        interval = max(self.interval, 2 * self.cost)
        writing = self._task is not None and not self._task.done()
        return not writing and dirty and self.clock.monotonic() - self.taken_at >= interval

    async def take(
        self,
        producer: AIOKafkaProducer,
        ledger: Ledger,
        since: int | None,
        positions: Positions,
        leases: frozenset[int],
        current: Callable[[], bool],
        started: float,
        *,
        wait: bool = True,
    ) -> None:
        """Checkpoint this state (the caller flushed every output first). ``current``
        says whether no rewind happened meanwhile, so the checkpoint is still the point to
        go back to; ``started``: when the caller began flushing (the cost counts it).
        ``wait=False`` (the loop's periodic ones) returns once the child runs; the write
        finishes in the background, and a failure costs only this one. ``wait=True``
        (revoke, stop) returns once the marker is on the topic."""
        engine, latest, provenance = ledger.engine, ledger.latest, ledger.provenance
        key = self.store.key

        def make() -> tuple[bytes, ...]:
            state = (engine.snapshot(), latest, since, provenance)
            blob = pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
            return (key.sign_blob(blob), blob) if key is not None else (blob,)

        self.taken_at = self.clock.monotonic()
        job = asyncio.ensure_future(made_in_child(make))
        task = asyncio.create_task(
            self._write(producer, job, positions, leases, current, started), name="snapshot"
        )
        self._task = task
        if wait:
            await task
        else:
            task.add_done_callback(_log_snapshot_failure)

    async def settled(self) -> None:
        """Wait for a snapshot still being written (its failure was logged already)."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            with contextlib.suppress(Exception):
                await task

    async def _write(
        self,
        producer: AIOKafkaProducer,
        job: asyncio.Future[bytes],
        positions: Positions,
        leases: frozenset[int],
        current: Callable[[], bool],
        started: float,
    ) -> None:
        made = await job
        marker = None
        if self.store.enabled and not self.superseded:  # the child signed: MAC, then bytes
            blob: bytes | memoryview = memoryview(made)[MAC_BYTES:]
            try:
                marker = await self.store.write(
                    producer, blob, positions, leases, rules=self.rules, blob_mac=made[:MAC_BYTES]
                )
                self.counts["snapshots"] += 1
            except Superseded as exc:
                self.superseded = True
                log.warning(
                    "a rebuild was requested after this worker chose its state: no more "
                    "snapshots from it (they would overtake the reset marker); the next "
                    "start rebuilds",
                    worker=self.store.worker,
                    reset=exc.reset.snapshot_id,
                )
        elif self.store.enabled:  # superseded: kept for rewinds only
            blob = memoryview(made)[MAC_BYTES:]
        else:  # no key: kept for rewinds only
            blob = made
        if current():  # not rewound meanwhile: the point to go back to
            self.last = Checkpoint(blob, positions, marker)
        self.cost = self.clock.monotonic() - started
        log.debug(
            "snapshot written" if marker is not None else "checkpoint kept (snapshots off)",
            worker=self.store.worker,
            bytes=len(blob),
            leases=sorted(leases),
            seconds=round(self.cost, 3),
        )


@dataclass(frozen=True, slots=True)
class Restore:
    """What a worker gaining leases does: go back to ``checkpoint`` (None: replay from the
    start), and with it the rebuild time and the snapshot it restored."""

    checkpoint: Checkpoint | None
    since: int | None = None
    snapshot: str | None = None


async def restore_point(
    store: SnapshotStore, rules: str, wanted: frozenset[int], first: bool, positions: Positions
) -> Restore | None:
    """Where a worker gaining ``wanted`` leases must go back to so that every record of
    those leases after their last flush gets published; None when it need not move (it is
    behind the old holder's flush point, so nothing was skipped)."""
    markers = await store.markers(needed=wanted, rules=rules)
    fence = store.last_end  # what this worker's state will descend from, if it moves
    while True:
        marker = choose_marker(markers, wanted, rules, store.broker)
        if marker is None or marker.is_reset:
            break
        behind = all(positions.get(tp, 0) <= o for tp, o in marker.positions.items())
        if not first and behind:
            return None  # no move: the state keeps its lineage (and its fence)
        try:
            blob = await store.load(marker)
            break
        except SnapshotRejected as exc:  # forged chunks: never decoded; an older one?
            log.warning(
                "snapshot failed verification; not decoded, trying an older one or a replay",
                worker=store.worker,
                snapshot=marker.snapshot_id,
                offset=marker.offset,
                error=str(exc),
            )
            markers = [m for m in markers if m.offset != marker.offset]
    store.fence = fence
    if marker is None:
        if first or any(positions.values()):
            log.info(
                "no snapshot covers the leases under these rules; replaying from the start",
                worker=store.worker,
            )
            return Restore(None)
        return None
    if marker.is_reset:
        log.info("rebuild requested; replaying from the start", since_ms=marker.since)
        return Restore(None, since=marker.since, snapshot=marker.snapshot_id)
    log.info(
        "restoring snapshot",
        worker=store.worker,
        snapshot=marker.snapshot_id,
        bytes=len(blob),
        events=marker.progress,
    )
    return Restore(Checkpoint(blob, dict(marker.positions), marker), snapshot=marker.snapshot_id)


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
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


def _log_snapshot_failure(task: asyncio.Task[None]) -> None:
    """A background snapshot that failed: the next one tries again (the loop's rewind to
    the last checkpoint covers lost sends; a lost snapshot only costs replay time)."""
    if not task.cancelled() and task.exception() is not None:
        log.warning("snapshot failed", error=repr(task.exception()))
