"""Event-time merge of many input partitions into the one order the engine applies.

SPEC orders events by partition only, but some rules read across topics: a spend that
names a contract must come after the contract's signature, which lives on another topic.
Replayed history arrives partition by partition, so reading whatever was fetched first
would reject such spends. The merge releases the record with the smallest (timestamp,
topic rank, partition, offset) only while every partition that may still hold an earlier
record has one buffered to compare with; a partition counts as idle when its fetch
position has reached the high watermark its last fetch reported. This is Kafka Streams'
``max.task.idle.ms`` idea with the wait tied to what the broker says exists.

At the live edge an idle partition may still be about to receive an earlier record: a
producer writing in time order lands its batches on different partitions a few
milliseconds apart. So while any partition is idle, a record is released only once
``grace`` seconds have passed, on the caller's clock, since the broker was first seen to
hold it: since a high watermark beyond it was reported, or, failing that, since it was
fetched. The worker's clock counts only time spent waiting in fetches, so a loop busy past
the grace has not used it up. Catching up on history, a partition's records were on the
broker long before they are fetched (the first fetch reported a high watermark far beyond
them), so they wait at most one grace in all, not one per fetch: with a small topic
already idle, waiting a grace per fetch cost the worker a quarter of its catch-up time.

Pure: no Kafka, no clock. The reader passes fetched records, high watermarks and "now".
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = ["Fetched", "InputRecord", "Merge", "Partition"]

Partition = tuple[str, int]


class Fetched(Protocol):
    """What the merge and the worker read of a fetched record: aiokafka's
    ``ConsumerRecord`` as the reader returns it, or an ``InputRecord``."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def timestamp(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Sequence[tuple[str, bytes]]: ...


@dataclass(frozen=True, slots=True)
class InputRecord:
    """One record built by hand (tests, tools): where it came from, its timestamp (ms),
    its raw bytes; the merge takes any ``Fetched``."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()


class _Chunk:
    """Records of one partition from one fetch, in offset order: ``next`` is the index of
        the first not yet released, ``at`` since when the broker was known to hold them all (the
    grace counts from there)."""

    def __init__(self, records: Sequence[Fetched], at: float) -> None:
        self.records = records
        self.next = 0
        self.at = at


class Merge:
    """Buffers per partition and releases records in event-time order.

    ``positions`` are the next offsets to fetch per partition (where the reader starts);
    ``rank`` orders topics on timestamp ties, e.g. reference before ownership before
    contracts before spend, so a rivalry declared in the same millisecond as a stake is
    applied first, as a file written in that order would be.

    A partition's buffer holds whole fetched chunks, not records: feeding a chunk and
    releasing a record cost no allocation but the head's sort key.
    """

    def __init__(
        self, positions: Mapping[Partition, int], rank: Mapping[str, int], grace: float = 0.0
    ) -> None:
        self._rank = dict(rank)
        self._grace = grace
        self._fetched = dict(positions)  # next offset the reader will hand us
        self._highwater: dict[Partition, int] = {}
        # Per partition, (high watermark, when first reported) for each rise not yet
        # fetched past: when a record was first known to be on the broker.
        self._rises: dict[Partition, deque[tuple[int, float]]] = {tp: deque() for tp in positions}
        # Slots: the partitions in (rank, partition, topic) order, so that a sort key is
        # (timestamp, slot). Topics of equal rank (only unknown ones: 99) tie-break
        # by name before offset.
        self._partitions: list[Partition] = sorted(
            positions, key=lambda tp: (self._rank.get(tp[0], 99), tp[1], tp[0])
        )
        self._slot = {tp: i for i, tp in enumerate(self._partitions)}
        self._buffers: list[deque[_Chunk]] = [deque() for _ in self._partitions]
        # Each buffer's head as one int, (timestamp << bits) | slot: the heap holds one
        # entry per slot, so (timestamp, slot) orders it and the offset is never needed.
        self._bits = max(len(self._partitions), 1).bit_length()
        self._mask = (1 << self._bits) - 1
        self._heap: list[int] = []
        self._buffered = 0

    @property
    def buffered(self) -> int:
        return self._buffered

    def feed(self, records: Iterable[Fetched], now: float = 0.0) -> None:
        """Add fetched records (each partition's in offset order), fetched at ``now``."""
        run: list[Fetched] = []
        topic: str | None = None
        partition = -1
        for r in records:
            if r.partition != partition or r.topic != topic:
                if run:
                    self._add(run, now)
                run = []
                topic, partition = r.topic, r.partition
            run.append(r)
        if run:
            self._add(run, now)

    def feed_partition(self, records: list[Fetched], now: float = 0.0) -> None:
        """One partition's fetched records in offset order (as the reader returns them):
        kept as they are, without a look at each."""
        if records:
            self._add(records, now)

    def _add(self, run: list[Fetched], now: float) -> None:
        """One partition's records, in offset order."""
        first, last = run[0], run[-1]
        tp = (first.topic, first.partition)
        slot = self._slot[tp]
        buf = self._buffers[slot]
        if not buf:
            heapq.heappush(self._heap, self._sort_key(first, slot))
        buf.append(_Chunk(run, self._known_since(tp, last.offset, now)))
        self._fetched[tp] = last.offset + 1
        self._buffered += len(run)

    def held(self) -> dict[Partition, int]:
        """Records buffered per partition (only those holding any): what the reader reads
        to stop fetching a partition that has run ahead of the others in event time."""
        return {
            tp: sum(len(c.records) - c.next for c in buf)
            for tp, buf in zip(self._partitions, self._buffers, strict=True)
            if buf
        }

    def set_highwaters(self, highwaters: Mapping[Partition, int | None], now: float = 0.0) -> None:
        """High watermarks as last reported by fetch responses (None: not known yet), read
        at ``now``: the records below a new one are known to be on the broker from then."""
        rises = self._rises
        for tp, hw in highwaters.items():
            if hw is not None:
                if hw > self._highwater.get(tp, -1):
                    seen = rises.get(tp)
                    if seen is not None:
                        seen.append((hw, now))
                self._highwater[tp] = hw

    def _known_since(self, tp: Partition, offset: int, now: float) -> float:
        """When the record at ``offset`` was first known to be on the broker: the earliest
        reported high watermark beyond it, else ``now`` (it came with this fetch)."""
        seen = self._rises.get(tp)
        if not seen:
            return now
        while seen and seen[0][0] <= offset:
            seen.popleft()  # reported before this record existed: of no use from here on
        return min(seen[0][1], now) if seen else now

    def waiting_on(self) -> list[Partition]:
        """Partitions that block release: nothing buffered, yet more exists on the broker."""
        return [
            tp
            for tp, buf in zip(self._partitions, self._buffers, strict=True)
            if not buf and not self._idle(tp)
        ]

    def release(self, now: float = 0.0, limit: int | None = None) -> Iterator[Fetched]:
        """Yield records in merged order for as long as the order is certain."""
        if self.waiting_on():
            return
        idle = sum(1 for buf in self._buffers if not buf)
        heap = self._heap
        buffers = self._buffers
        grace = self._grace
        mask = self._mask
        count = 0
        while heap and (limit is None or count < limit):
            slot = heap[0] & mask
            buf = buffers[slot]
            chunk = buf[0]
            if idle and now - chunk.at < grace:
                return  # an idle partition may still get an earlier record
            records = chunk.records
            record = records[chunk.next]
            chunk.next += 1
            if chunk.next == len(records):
                buf.popleft()
            self._buffered -= 1
            count += 1
            if buf:
                head = buf[0]
                heapq.heapreplace(heap, self._sort_key(head.records[head.next], slot))
                yield record
                continue
            heapq.heappop(heap)
            if not self._idle(self._partitions[slot]):
                yield record
                return  # it blocks: it may hold the next record
            idle += 1
            yield record

    def next_release_in(self, now: float) -> float | None:
        """Seconds until the head record's grace ends, when only the grace holds it back
        (None: nothing buffered, or a partition blocks). The reader waits no longer than
        this for new records, so a record leaves when its grace ends, not a fetch later."""
        heap = self._heap
        if not heap or self.waiting_on():
            return None
        if all(self._buffers):
            return 0.0  # no idle partition: no grace, release now
        fetched_at = self._buffers[heap[0] & self._mask][0].at
        return max(0.0, fetched_at + self._grace - now)

    def _idle(self, tp: Partition) -> bool:
        hw = self._highwater.get(tp)
        return hw is not None and self._fetched[tp] >= hw

    def _sort_key(self, r: Fetched, slot: int) -> int:
        return (r.timestamp << self._bits) | slot
