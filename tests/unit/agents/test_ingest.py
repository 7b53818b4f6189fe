"""The worker's ingest: seeks only between fetches, and a merge grace that counts time
spent waiting for the broker, not time the loop was busy.

A lease change rewinds the worker from the group's callback, while the loop may be waiting
in a fetch. aiokafka can complete that fetch with records read from the new position; the
loop drops the batch as stale (the generation changed), so had the callback seeked, the
reader would already be past those records and never return them: the merge then waits
on those partitions until new records arrive, and applies those with a hole before them.
The two-worker chaos campaign found it (a worker stalled for a minute, then published
conflicts the backtest never had). So a reset only records where to seek; the loop seeks
before its next fetch.

At the live edge a record waits up to the grace for an earlier one on an idle partition
(a producer's batches for two partitions reach the broker milliseconds apart). If the
loop is busy for longer than the grace (a big batch, a snapshot fork, other tasks in the
process), nothing was fetched meanwhile: on the wall clock the grace would be over and the
record released ahead of an earlier one still unfetched. The full-size receivers campaign
(worker and delivery in one busy process) lost 6 transitions that way.
"""

from __future__ import annotations

from typing import Any

from aiokafka import TopicPartition

from streams.agents.ingest import Ingest
from streams.agents.merge import InputRecord
from streams.kafka.topics import TopicNames


class FakeClock:
    """Moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> float:
        return 1_735_689_600.0 + self.now


class Reader:
    """Records seeks (failing the test if one happens while a fetch is pending); fetches
    return what the test queued, after `waits` seconds of the fake clock."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.seeks: list[tuple[TopicPartition, int]] = []
        self.fetching = False
        self.highwaters: dict[TopicPartition, int] = {}
        self.queued: list[tuple[float, dict[TopicPartition, list[Any]]]] = []
        self.paused: set[TopicPartition] = set()

    def pause(self, *tps: TopicPartition) -> None:
        self.paused.update(tps)

    def resume(self, *tps: TopicPartition) -> None:
        self.paused.difference_update(tps)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        assert not self.fetching, "seek while a fetch is in flight"
        self.seeks.append((tp, offset))

    def highwater(self, tp: TopicPartition) -> int | None:
        return self.highwaters.get(tp, 0)

    async def getmany(self, timeout_ms: int, max_records: int) -> dict[TopicPartition, list[Any]]:
        waits, batch = self.queued.pop(0) if self.queued else (timeout_ms / 1000, {})
        self.clock.now += waits
        return batch


def _ingest(
    grace: float = 0.2, hold: int = 10_000
) -> tuple[Ingest, Reader, FakeClock, list[TopicPartition]]:
    clock = FakeClock()
    names = TopicNames()
    ingest = Ingest("127.0.0.1:1", names, clock, grace=grace, fetch_max_wait_ms=1000, hold=hold)
    reader = Reader(clock)
    tps = [TopicPartition(t, p) for t in names.inputs for p in range(2)]
    ingest.reader, ingest.partitions = reader, tps  # type: ignore[assignment]
    return ingest, reader, clock, tps


def test_a_rewind_during_a_fetch_leaves_the_seek_to_the_loop() -> None:
    ingest, reader, _, tps = _ingest()
    ingest.reset({})
    ingest.seek_pending()
    assert reader.seeks == [(tp, 0) for tp in tps]
    reader.seeks.clear()

    reader.fetching = True  # the loop waits in getmany; the lease callback resets
    ingest.reset({(tp.topic, tp.partition): 5 + i for i, tp in enumerate(tps)})
    assert reader.seeks == []
    reader.fetching = False  # the loop drops that batch, then, before fetching again:
    ingest.seek_pending()
    assert reader.seeks == [(tp, 5 + i) for i, tp in enumerate(tps)]

    reader.seeks.clear()
    ingest.seek_pending()
    assert reader.seeks == []  # once per reset


def test_the_last_of_several_resets_wins() -> None:
    ingest, reader, _, tps = _ingest()
    ingest.reset({(tps[0].topic, tps[0].partition): 3})
    ingest.reset({(tps[0].topic, tps[0].partition): 9})
    ingest.seek_pending()
    assert reader.seeks[0] == (tps[0], 9) and len(reader.seeks) == len(tps)


def _record(tp: TopicPartition, offset: int, ms: int) -> InputRecord:
    return InputRecord(tp.topic, tp.partition, offset, ms, None, b"{}")


async def test_a_busy_loop_does_not_use_up_the_grace() -> None:
    ingest, reader, clock, _ = _ingest(grace=0.2)
    names = ingest.names
    spend, owner = TopicPartition(names.spend, 0), TopicPartition(names.ownership, 0)
    ingest.reset({})
    reader.highwaters[spend] = 1
    reader.queued.append((0.0, {spend: [_record(spend, 0, 1735689602000)]}))
    assert list(ingest.release(await ingest.fetch())) == []
    assert ingest.merge.buffered == 1  # other partitions idle: it waits the grace

    clock.now += 0.3  # the loop busy past the grace, fetching nothing
    assert list(ingest.release({})) == []  # still waiting: no fetch waited that long
    assert ingest.fetch_wait_ms() == 201  # and the next fetch waits for the grace's end

    reader.highwaters[owner] = 1
    reader.queued.append((0.05, {owner: [_record(owner, 0, 1735689601000)]}))
    released = list(ingest.release(await ingest.fetch()))
    assert released == []  # the earlier record came: both wait for the grace now
    reader.queued.append((0.25, {}))  # then a fetch waits longer than the grace
    released = list(ingest.release(await ingest.fetch()))
    assert [r.topic for r in released] == [names.ownership, names.spend]  # event-time order


async def test_a_partition_that_ran_ahead_is_paused_until_the_others_catch_up() -> None:
    """Catching up, one partition's records can all be later than another's: the merge
    holds them. Past ``hold`` records the reader stops fetching that partition, and fetches
    it again once the merge is down to half of that."""
    ingest, reader, _, _ = _ingest(grace=0.0, hold=4)  # no grace: idle partitions don't hold
    names = ingest.names
    ahead, behind = TopicPartition(names.spend, 0), TopicPartition(names.ownership, 0)
    ingest.reset({})
    for tp in ingest.partitions:
        reader.highwaters[tp] = 0
    reader.highwaters[ahead], reader.highwaters[behind] = 100, 100
    late = [_record(ahead, i, 1735689700000 + i) for i in range(5)]
    reader.queued.append((0.0, {ahead: late}))
    assert list(ingest.release(await ingest.fetch())) == []  # waits on `behind`
    assert reader.paused == set()
    early = [_record(behind, i, 1735689600000 + 50 * i) for i in range(3)]
    reader.queued.append((0.0, {behind: early}))
    released = list(ingest.release(await ingest.fetch()))
    assert reader.paused == {ahead}  # 5 held >= 4: no more fetches from it
    assert [r.offset for r in released] == [0, 1, 2] and ingest.merge.held() == {
        (ahead.topic, ahead.partition): 5
    }
    assert ingest.progress()["paused"] == [f"{ahead.topic}/{ahead.partition}"]

    catch_up = [_record(behind, 3 + i, 1735689700000 + i) for i in range(3)]
    reader.queued.append((0.0, {behind: catch_up}))
    list(ingest.release(await ingest.fetch()))
    assert ingest.merge.held() == {(ahead.topic, ahead.partition): 3}
    reader.queued.append((0.0, {}))
    await ingest.fetch()
    assert reader.paused == {ahead}  # below `hold` but not yet half of it: still paused
    more = [_record(behind, 6 + i, 1735689700003 + i) for i in range(2)]
    reader.queued.append((0.0, {behind: more}))
    list(ingest.release(await ingest.fetch()))
    assert ingest.merge.held() == {(ahead.topic, ahead.partition): 1}
    reader.queued.append((0.0, {}))
    await ingest.fetch()
    assert reader.paused == set()  # down to half: fetched again


async def test_a_reset_resumes_every_paused_partition() -> None:
    ingest, reader, _, _ = _ingest(hold=2)
    names = ingest.names
    ahead = TopicPartition(names.spend, 0)
    ingest.reset({})
    for tp in ingest.partitions:
        reader.highwaters[tp] = 10
    reader.queued.append((0.0, {ahead: [_record(ahead, i, 1735689700000 + i) for i in range(3)]}))
    list(ingest.release(await ingest.fetch()))
    reader.queued.append((0.0, {}))
    await ingest.fetch()
    assert reader.paused == {ahead}
    ingest.reset({})  # a rewind: the new merge holds nothing
    await ingest.fetch()
    assert reader.paused == set() and ingest.paused == set()
