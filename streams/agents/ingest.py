"""Ingest: every input partition, read without a group and merged into event-time order.

The worker's reader is a group-less consumer assigned every partition of the input topics
(every worker reads everything: docs/architecture.md, "Scaling out"); ``Merge`` releases
what it fetched in the one order the engine applies. Positions — the next offset per
partition — are what the state reflects once the released records are applied; a reset
(a restore or a rewind) sets them, and the reader seeks there before its next fetch,
never while one is in flight (tests/unit/agents/test_ingest.py says why).

The merge's grace runs on the *fetch clock*: monotonic time spent waiting in fetches. A
loop busy for longer than the grace (a big batch, a snapshot fork, other tasks) fetched
nothing meanwhile, so the grace must not run out while an earlier record sits unfetched on
an idle partition (the full-size receivers campaign caught that).

Backpressure: while catching up, one partition can run far ahead of the others in event
time, and the merge must hold everything fetched from it until the others catch up — the
bench saw 400k records held at once. A partition holding ``hold`` records or more is
paused (not fetched) until it is down to half of that; a paused partition is never the one
the merge waits on (it holds records), so the pause cannot deadlock, and a reset resumes
every partition (the new merge holds nothing).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.agents.clock import Clock
from streams.agents.merge import Fetched, Merge
from streams.kafka.clients import make_consumer
from streams.kafka.topics import TopicNames

__all__ = ["Ingest", "Positions"]

Positions = dict[tuple[str, int], int]


class Ingest:
    """The reader, the merge and the positions; ``start`` before anything else."""

    def __init__(
        self,
        bootstrap: str,
        names: TopicNames,
        clock: Clock,
        *,
        client: Mapping[str, Any] | None = None,
        fetch_max_wait_ms: int = 100,
        max_records: int = 10_000,
        grace: float = 0.2,
        hold: int = 10_000,
    ) -> None:
        self.bootstrap = bootstrap
        self.names = names
        self.clock = clock
        self.client = dict(client or {})
        self.fetch_max_wait_ms = fetch_max_wait_ms
        self.max_records = max_records
        self.grace = grace
        self.hold = hold
        self.rank = {t: i for i, t in enumerate(names.inputs)}
        self.partitions: list[TopicPartition] = []
        self.positions: Positions = {}
        self.merge = Merge({}, self.rank, grace)
        self.fetch_clock = 0.0  # seconds spent waiting in fetches: the merge's clock
        self.reader: AIOKafkaConsumer | None = None
        self._seek_to: Positions | None = None  # set by a reset, done before the next fetch
        self.paused: set[TopicPartition] = set()  # not fetched: ahead of the others

    async def start(self) -> None:
        self.reader = reader = make_consumer(
            self.bootstrap,
            self.client,
            enable_auto_commit=False,
            fetch_max_wait_ms=self.fetch_max_wait_ms,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=1024 * 1024,
        )
        await reader.start()
        await reader.topics()  # metadata, so partitions_for_topic answers
        self.partitions = [
            TopicPartition(t, p)
            for t in self.names.inputs
            for p in sorted(reader.partitions_for_topic(t) or ())
        ]
        reader.assign(self.partitions)

    def partition_count(self, topic: str) -> int:
        """Partitions of a topic as the reader's metadata has them (0 when unknown)."""
        assert self.reader is not None
        return len(self.reader.partitions_for_topic(topic) or ())

    async def stop(self) -> None:
        if self.reader is not None:
            await self.reader.stop()

    # -- positions ---------------------------------------------------------------------

    def reset(self, positions: Mapping[tuple[str, int], int]) -> None:
        """Start over from ``positions`` (0 where absent): a fresh merge, and a seek that
        the next ``fetch`` makes. A seek made here, while a fetch is in flight, could be
        overtaken by records fetched from the new position that the loop then drops as
        stale: the reader would skip them for good."""
        self.positions = {
            (tp.topic, tp.partition): positions.get((tp.topic, tp.partition), 0)
            for tp in self.partitions
        }
        self._seek_to = dict(self.positions)
        self.merge = Merge(self.positions, self.rank, self.grace)

    def seek_pending(self) -> None:
        """Move the reader to where the last reset left the positions (no fetch in flight)."""
        seek_to, self._seek_to = self._seek_to, None
        if seek_to is not None:
            assert self.reader is not None
            for tp in self.partitions:
                self.reader.seek(tp, seek_to[(tp.topic, tp.partition)])

    # -- reading ------------------------------------------------------------------------

    async def fetch(self) -> Mapping[TopicPartition, list[Any]]:
        """One fetch, after any pending seek and with partitions that ran ahead paused;
        the time it waited moves the fetch clock."""
        reader = self.reader
        assert reader is not None
        self.seek_pending()
        self.throttle()
        waited_from = self.clock.monotonic()
        batch = await reader.getmany(timeout_ms=self.fetch_wait_ms(), max_records=self.max_records)
        self.fetch_clock += self.clock.monotonic() - waited_from
        return batch

    def throttle(self) -> None:
        """Pause partitions holding ``hold`` records or more in the merge; resume those
        down to half of that (the gap stops a partition flapping on every fetch)."""
        reader = self.reader
        assert reader is not None
        held = self.merge.held() if self.merge.buffered >= self.hold or self.paused else {}
        hold, low = self.hold, self.hold // 2
        paused = {
            tp
            for tp in self.partitions
            if (n := held.get((tp.topic, tp.partition), 0)) >= hold
            or (n >= low and tp in self.paused)
        }
        if paused != self.paused:
            if gone := self.paused - paused:
                reader.resume(*gone)
            if new := paused - self.paused:
                reader.pause(*new)
            self.paused = paused

    def fetch_wait_ms(self) -> int:
        """How long a fetch may wait for records: until the next buffered record's grace
        ends, at most ``fetch_max_wait_ms`` (at least 1 ms: 0 would spin)."""
        wait = self.fetch_max_wait_ms
        merge = self.merge
        if merge.buffered:
            due = merge.next_release_in(self.fetch_clock)
            if due is not None:
                wait = min(wait, max(1, int(due * 1000) + 1))
        return wait

    def release(self, batch: Mapping[TopicPartition, list[Any]]) -> Iterator[Fetched]:
        """Feed a fetched batch to the merge; the records whose order is now certain."""
        reader = self.reader
        assert reader is not None
        merge, clock = self.merge, self.fetch_clock
        for records in batch.values():  # aiokafka ConsumerRecords: no copies on the way
            merge.feed_partition(records, clock)
        merge.set_highwaters(
            {(tp.topic, tp.partition): reader.highwater(tp) for tp in self.partitions}, clock
        )
        return merge.release(clock)

    # -- where it stands ------------------------------------------------------------------

    @property
    def caught_up(self) -> bool:
        """Nothing held in the merge and no partition with records still to fetch."""
        return not self.merge.buffered and not self.merge.waiting_on()

    def progress(self) -> dict[str, Any]:
        """What a catching-up worker logs: held records, blocking partitions, and every
        partition behind its high watermark as (position, high watermark)."""
        reader = self.reader
        assert reader is not None
        positions = self.positions
        return {
            "buffered": self.merge.buffered,
            "paused": sorted(f"{tp.topic}/{tp.partition}" for tp in self.paused),
            "waiting_on": [f"{t}/{p}" for t, p in self.merge.waiting_on()][:8],
            "behind": {
                f"{tp.topic}/{tp.partition}": (positions[(tp.topic, tp.partition)], hw)
                for tp in self.partitions
                if (hw := reader.highwater(tp)) is None or hw > positions[(tp.topic, tp.partition)]
            },
        }

    def lag(self) -> Counter[str]:
        """Records on the broker not yet applied, per topic."""
        reader = self.reader
        assert reader is not None
        lag: Counter[str] = Counter()
        for tp in self.partitions:
            hw = reader.highwater(tp)
            if hw is not None:
                lag[tp.topic] += max(hw - self.positions[(tp.topic, tp.partition)], 0)
        return lag
