"""The worker's reader is only moved by the loop, between fetches.

A lease change rewinds the worker from the group's callback, while the loop may be waiting
in a fetch. aiokafka can complete that fetch with records read from the new position; the
loop drops the batch as stale (the generation changed), so had the callback seeked, the
reader would already be past those records and never return them: the merge then waits
on those partitions until new records arrive, and applies those with a hole before them.
The two-worker chaos campaign found it (a worker stalled for a minute, then published
conflicts the backtest never had). So a reset only records where to seek; the loop seeks
before its next fetch."""

from __future__ import annotations

from aiokafka import TopicPartition

from streams.agents.worker import Worker, WorkerOptions, _Checkpoint


class Reader:
    """Records seeks; fails the test if one happens while a fetch is pending."""

    def __init__(self) -> None:
        self.seeks: list[tuple[TopicPartition, int]] = []
        self.fetching = False

    def seek(self, tp: TopicPartition, offset: int) -> None:
        assert not self.fetching, "seek while a fetch is in flight"
        self.seeks.append((tp, offset))


def _worker() -> tuple[Worker, Reader, list[TopicPartition]]:
    worker = Worker(WorkerOptions("127.0.0.1:1"))
    reader = Reader()
    tps = [TopicPartition(t, p) for t in worker.names.inputs for p in range(2)]
    worker._reader, worker._partitions = reader, tps  # type: ignore[assignment]
    return worker, reader, tps


def test_a_rewind_during_a_fetch_leaves_the_seek_to_the_loop() -> None:
    worker, reader, tps = _worker()
    worker._reset(None, {})
    worker._seek_pending(reader)  # type: ignore[arg-type]
    assert reader.seeks == [(tp, 0) for tp in tps]
    reader.seeks.clear()

    reader.fetching = True  # the loop waits in getmany; the lease callback rewinds
    positions = {(tp.topic, tp.partition): 5 + i for i, tp in enumerate(tps)}
    generation = worker._generation
    worker._rewind(_Checkpoint(None, positions))
    assert worker._generation == generation + 1 and reader.seeks == []
    reader.fetching = False  # the loop drops that batch, then, before fetching again:
    worker._seek_pending(reader)  # type: ignore[arg-type]
    assert reader.seeks == [(tp, 5 + i) for i, tp in enumerate(tps)]

    reader.seeks.clear()
    worker._seek_pending(reader)  # type: ignore[arg-type]
    assert reader.seeks == []  # once per reset


def test_the_last_of_several_resets_wins() -> None:
    worker, reader, tps = _worker()
    worker._reset(None, {(tps[0].topic, tps[0].partition): 3})
    worker._reset(None, {(tps[0].topic, tps[0].partition): 9})
    worker._seek_pending(reader)  # type: ignore[arg-type]
    assert reader.seeks[0] == (tps[0], 9) and len(reader.seeks) == len(tps)
