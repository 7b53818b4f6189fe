"""Engine snapshots on a Kafka topic, with the input offsets and leases they cover.

Why not faust tables: the engine's state is one graph (a stake change moves exposure for
every client downstream), not per-key values, and faust's changelog recovery reads the end
offset from ListOffsets, which Tansu answers short (``docs/notes-faust-tansu.md``). A snapshot here
is the pickled engine split into chunks plus one *marker* record naming the chunks, the
input positions the state reflects, and the leases (client partitions) whose alert records
were all flushed up to those positions. State and positions travel together, so they cannot
drift apart; a torn write (chunks without marker) is simply never chosen; and a missing
snapshot costs a replay of the event topics, which are kept forever.

Reading uses the high watermark from fetch responses (right on Tansu) and only the last
few hundred records of the topic, widening the window until the markers it needs appear.

Nothing from the wire runs: a marker is parsed only once its MAC verifies, and a snapshot's
bytes are handed on (to be unpickled) only once their MAC, carried in the verified marker,
does (``snapshot_key.py``). A store without a key writes and reads nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from streams.agents.snapshot_key import SnapshotKey
from streams.kafka.clients import make_consumer
from streams.kafka.partitions import read_range, true_ends

__all__ = [
    "CHUNK_BYTES",
    "Marker",
    "SnapshotRejected",
    "SnapshotStore",
    "Superseded",
    "choose_marker",
    "made_in_child",
    "usable_marker",
]

CHUNK_BYTES = 512 * 1024
Positions = dict[tuple[str, int], int]
Blob = bytes | memoryview

log = structlog.get_logger("stakewatch.snapshots")


class SnapshotRejected(ValueError):
    """A snapshot whose bytes fail verification: never decoded."""


class Superseded(RuntimeError):
    """A reset marker (``stakewatch rebuild``) came after this worker chose its state: a
    snapshot of that state written now would overtake the reset, and the next start would
    restore it instead of rebuilding."""

    def __init__(self, reset: Marker) -> None:
        super().__init__(f"reset marker {reset.snapshot_id} at offset {reset.offset}")
        self.reset = reset


@dataclass(frozen=True, slots=True)
class Marker:
    """A complete snapshot: where its chunks are and what it covers."""

    offset: int
    snapshot_id: str
    worker: str
    chunks: tuple[int, ...]
    positions: Mapping[tuple[str, int], int]
    leases: frozenset[int]
    created: float
    rules: str = ""  # fingerprint of the rule set the state was computed with; "*" = any
    since: int | None = None  # reset markers: apply only records stamped at/after (ms)
    broker: str = ""  # the embedded broker instance written to ("" on a real cluster)
    blob_mac: str = ""  # HMAC-SHA256 (hex) of the chunks' bytes, in order

    @property
    def is_reset(self) -> bool:
        """Written by ``stakewatch rebuild``: start from the empty state at offset 0."""
        return not self.chunks

    @property
    def progress(self) -> int:
        return sum(self.positions.values())

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "snapshot_id": self.snapshot_id,
                "worker": self.worker,
                "chunks": list(self.chunks),
                "positions": [[t, p, o] for (t, p), o in sorted(self.positions.items())],
                "leases": sorted(self.leases),
                "created": self.created,
                "rules": self.rules,
                "since": self.since,
                "broker": self.broker,
                "blob_mac": self.blob_mac,
            }
        )

    @classmethod
    def from_json(cls, offset: int, raw: bytes) -> Marker:
        doc = orjson.loads(raw)
        return cls(
            offset=offset,
            snapshot_id=doc["snapshot_id"],
            worker=doc["worker"],
            chunks=tuple(doc["chunks"]),
            positions={(t, p): o for t, p, o in doc["positions"]},
            leases=frozenset(doc["leases"]),
            created=doc["created"],
            rules=doc.get("rules", ""),
            since=doc.get("since"),
            broker=doc.get("broker", ""),
            blob_mac=doc.get("blob_mac", ""),
        )


def choose_marker(
    markers: Sequence[Marker], gained: Iterable[int], rules: str = "", broker: str = ""
) -> Marker | None:
    """The snapshot to restore before publishing for ``gained`` leases.

    For each gained lease, the newest snapshot whose writer published for it: everything
    before that snapshot's positions reached the alerts topic. Of those, the least advanced,
    so no gained lease skips a transition. None when some lease has no such snapshot (then
    only a replay from the beginning is safe). Snapshots computed under another rule set
    do not count: a changed rule set means a replay, so every conflict is re-evaluated.
    A reset marker (``stakewatch rebuild``) counts for any rule set.

    Nor do snapshots written to another embedded broker instance (``broker``): a process
    that has not yet noticed its embedded broker restart can write one into the refilled
    successor, claiming alert records were published that the new alerts topic never got.
    """
    newest: dict[int, Marker] = {}
    usable = (m for m in markers if usable_marker(m, rules, broker))
    for marker in sorted(usable, key=lambda m: m.offset):
        for lease in marker.leases:
            newest[lease] = marker
    picked = []
    for lease in gained:
        if lease not in newest:
            return None
        picked.append(newest[lease])
    if not picked:
        return None
    return min(picked, key=lambda m: (m.progress, m.offset))


def usable_marker(marker: Marker, rules: str | None, broker: str) -> bool:
    """Whether a marker may be restored under ``rules`` (any, when None) on ``broker``."""
    if marker.is_reset:
        return True
    return (rules is None or marker.rules == rules) and marker.broker == broker


async def made_in_child(make: Callable[[], Blob | Sequence[Blob]]) -> bytes:
    """``make()`` run in a forked child; its bytes, read back through a pipe. ``make`` may
    return several parts (a MAC and the bytes it signs): written back to back, not joined
    in the child, which would copy the state once more.

    The child sees the parent's memory as it was at the fork (copy-on-write), so the
    worker's loop goes on applying records while the child pickles a consistent state, on
    the other core. The loop only pays for the fork itself (page tables: tens of ms for
    gigabytes). Pages the loop writes to meanwhile, and objects the pickler touches (their
    reference counts), get copied: memory rises by up to the state's size while a snapshot
    is made. Without ``os.fork`` (not POSIX), ``make`` runs here.

    The child closes every descriptor it inherited but its end of the pipe, and the parent
    reads the pipe on the event loop, not in a worker thread: a child holding an inherited
    ``flock`` (the archive's, taken by a thread at the moment of the fork) while it waits
    for a reader queued behind threads waiting for that very lock was a deadlock the chaos
    campaign found.
    """
    if not hasattr(os, "fork"):
        made = make()
        return bytes(made) if isinstance(made, bytes | memoryview) else b"".join(made)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: no event loop, no logging, nothing but make() and write
        code = 1
        try:
            os.closerange(0, r)
            os.closerange(r + 1, w)
            os.closerange(w + 1, _MAX_FD)
            os.close(r)
            gc.disable()  # a collection would touch (and so copy) every tracked object
            made = make()
            for part in (made,) if isinstance(made, bytes | memoryview) else made:
                view = memoryview(part)
                while view:
                    view = view[os.write(w, view) :]
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 20)
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(r, "rb", buffering=0)
    )
    try:
        data = await reader.read()  # to EOF: the child wrote everything and exited
    finally:
        transport.close()
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)  # noqa: ASYNC222 - WNOHANG never blocks
        if done:
            break
        await asyncio.sleep(0.01)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"snapshot child {pid} failed ({status})")
    return data


_MAX_FD = min(os.sysconf("SC_OPEN_MAX"), 1 << 20) if hasattr(os, "sysconf") else 1024


class SnapshotStore:
    """Writes and reads snapshots on one single-partition topic."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        worker: str,
        client: Mapping[str, Any] | None = None,
        broker: str = "",
        key: SnapshotKey | None = None,
    ) -> None:
        self.broker = broker
        self.key = key
        self.bootstrap = bootstrap
        self.client = dict(client or {})
        self.topic = topic
        self.worker = worker
        self._seq = 0
        # The topic's end when this worker last chose what to restore (or replay): a reset
        # marker at or after it was written after, and fences this worker's snapshots.
        self.fence = 0
        self.last_end = 0  # the end offset `markers` last saw

    @property
    def enabled(self) -> bool:
        """Whether snapshots are written and read at all (there is a key to sign them)."""
        return self.key is not None

    async def write(
        self,
        producer: AIOKafkaProducer,
        blob: Blob | None,
        positions: Positions,
        leases: Iterable[int],
        *,
        rules: str = "",
        since: int | None = None,
        blob_mac: bytes | None = None,
    ) -> Marker:
        """Write chunks, then the signed marker; returns the marker once the broker has it.
        ``blob=None`` writes a reset marker (no chunks). ``blob_mac``: the blob's MAC when
        the child that made it signed it already (else it is computed here)."""
        key = self.key
        if key is None:
            raise RuntimeError("no snapshot key: snapshots are off")
        if blob is not None:
            reset = await self.reset_after_fence()
            if reset is not None:
                raise Superseded(reset)
        if blob is not None and blob_mac is None:
            blob_mac = key.sign_blob(blob)
        self._seq += 1
        snapshot_id = f"{self.worker}:{self._seq}:{time.time_ns()}"
        name = snapshot_id.encode()
        futures = (
            [
                await producer.send(
                    self.topic, bytes(blob[i : i + CHUNK_BYTES]), key=name, partition=0
                )
                for i in range(0, max(len(blob), 1), CHUNK_BYTES)
            ]
            if blob is not None
            else []
        )
        chunks = tuple([(await f).offset for f in futures])
        marker = Marker(
            offset=-1,
            snapshot_id=snapshot_id,
            worker=self.worker,
            chunks=chunks,
            positions=dict(positions),
            leases=frozenset(leases),
            created=time.time(),
            rules=rules,
            since=since,
            broker=self.broker,
            blob_mac=blob_mac.decode() if blob_mac else "",
        )
        value = marker.to_json()
        meta = await producer.send_and_wait(
            self.topic,
            value,
            key=name,
            partition=0,
            headers=[("kind", b"marker"), ("mac", key.sign_marker(value))],
        )
        return dataclasses.replace(marker, offset=meta.offset)

    async def markers(
        self, needed: Iterable[int] = (), window: int = 4, rules: str | None = None
    ) -> list[Marker]:
        """Markers near the end of the topic; widens the window (×4) until every ``needed``
        lease has one usable under ``rules`` (any, when None) or the whole topic has been
        read. It starts small: a marker is written right after its chunks, so the newest
        is usually the last record, and every record read costs up to a 512 KiB chunk.

        A marker whose MAC does not verify is never parsed: skipped, and said once per
        call in one log line. Without a key: no markers (snapshots are off)."""
        key = self.key
        if key is None:
            return []
        needed = set(needed)
        forged: set[int] = set()
        tp = TopicPartition(self.topic, 0)
        consumer = _consumer(self.bootstrap, self.client)
        await consumer.start()
        try:
            consumer.assign([tp])
            (end,) = (await true_ends(consumer, [tp])).values()
            self.last_end = end
            start = end
            while True:
                start = max(0, end - window)
                records = await read_range(consumer, tp, start, end)
                found = []
                for r in records:
                    headers = dict(r.headers or ())
                    if headers.get("kind") != b"marker":
                        continue
                    if key.marker_ok(r.value or b"", headers.get("mac")):
                        found.append(Marker.from_json(r.offset, r.value))
                    else:
                        forged.add(r.offset)
                usable = [m for m in found if usable_marker(m, rules, self.broker)]
                covered = set().union(*(m.leases for m in usable)) if usable else set()
                if start == 0 or (needed <= covered and usable):
                    return found
                window *= 4
        finally:
            await consumer.stop()
            if forged:
                log.warning(
                    "snapshot markers failed verification; ignored, not decoded",
                    topic=self.topic,
                    count=len(forged),
                    offsets=sorted(forged)[:10],
                )

    async def reset_after_fence(self, window: int = 8) -> Marker | None:
        """The newest verified reset marker written at or after ``fence``, among the last
        ``window`` records (a rebuild is refused while workers live, so a reset racing a
        worker's last snapshot is at the end of the topic), or None."""
        key = self.key
        assert key is not None
        tp = TopicPartition(self.topic, 0)
        consumer = _consumer(self.bootstrap, self.client)
        await consumer.start()
        try:
            consumer.assign([tp])
            (end,) = (await true_ends(consumer, [tp])).values()
            start = max(self.fence, end - window)
            if start >= end:
                return None
            newest = None
            for r in await read_range(consumer, tp, start, end):
                headers = dict(r.headers or ())
                if headers.get("kind") == b"marker" and key.marker_ok(
                    r.value or b"", headers.get("mac")
                ):
                    marker = Marker.from_json(r.offset, r.value or b"")
                    if marker.is_reset:
                        newest = marker
            return newest
        finally:
            await consumer.stop()

    async def load(self, marker: Marker) -> bytes:
        """The snapshot's bytes, verified against the (verified) marker's MAC; a
        ``SnapshotRejected`` when they fail, before anyone could unpickle them. Its chunks
        come in one range read (one writer writes them back to back; another worker's
        chunks in between are skipped), not a fetch per chunk."""
        key = self.key
        if key is None:
            raise RuntimeError("no snapshot key: snapshots are off")
        tp = TopicPartition(self.topic, 0)
        consumer = _consumer(self.bootstrap, self.client, fetch_bytes=16 * CHUNK_BYTES)
        await consumer.start()
        try:
            consumer.assign([tp])
            wanted = set(marker.chunks)
            parts = {}
            if wanted:
                records = await read_range(consumer, tp, min(wanted), max(wanted) + 1)
                parts = {r.offset: r.value or b"" for r in records if r.offset in wanted}
            missing = wanted - parts.keys()
            if missing:
                raise ValueError(f"snapshot {marker.snapshot_id}: chunks {sorted(missing)} gone")
            blob = b"".join(parts[offset] for offset in marker.chunks)
            if not key.blob_ok(blob, marker.blob_mac):
                raise SnapshotRejected(
                    f"snapshot {marker.snapshot_id}: its chunks fail verification"
                )
            return blob
        finally:
            await consumer.stop()


def _consumer(
    bootstrap: str, client: Mapping[str, Any], fetch_bytes: int = 4 * CHUNK_BYTES
) -> AIOKafkaConsumer:
    return make_consumer(
        bootstrap,
        client,
        enable_auto_commit=False,
        fetch_max_wait_ms=50,
        max_partition_fetch_bytes=fetch_bytes,
        auto_offset_reset="earliest",
    )
