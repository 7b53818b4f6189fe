"""The merge's grace counts time spent waiting for the broker, not time the loop was busy.

At the live edge a record waits up to the grace for an earlier one on an idle partition
(a producer's batches for two partitions reach the broker milliseconds apart). If the
loop is busy for longer than the grace (a big batch, a snapshot fork, other tasks in the
process), nothing was fetched meanwhile: on the wall clock the grace would be over and the
record released ahead of an earlier one still unfetched. The full-size receivers campaign
(worker and delivery in one busy process) lost 6 transitions that way."""

from __future__ import annotations

import time

import orjson
from aiokafka import TopicPartition

from streams.agents.merge import InputRecord
from streams.agents.worker import Worker, WorkerOptions


class Reader:
    def __init__(self, highwaters: dict[TopicPartition, int]) -> None:
        self.highwaters = highwaters

    def highwater(self, tp: TopicPartition) -> int | None:
        return self.highwaters.get(tp, 0)


class Producer:
    async def send(self, *args, **kwargs):
        raise AssertionError("nothing is published in this test")


def _event(eid: str, etype: str, t: str, data: dict) -> bytes:
    return orjson.dumps(
        {"specversion": "1.0", "id": eid, "source": "test", "type": etype, "time": t, "data": data}
    )


def _record(tp: TopicPartition, offset: int, ms: int, value: bytes) -> InputRecord:
    return InputRecord(tp.topic, tp.partition, offset, ms, None, value)


async def test_a_busy_loop_does_not_use_up_the_grace() -> None:
    worker = Worker(WorkerOptions("127.0.0.1:1", merge_grace=0.2, snapshot_interval=3600))
    names = worker.names
    tps = [TopicPartition(t, p) for t in names.inputs for p in range(2)]
    spend, owner = TopicPartition(names.spend, 0), TopicPartition(names.ownership, 0)
    reader = Reader({spend: 1})
    worker._reader, worker._partitions = reader, tps  # type: ignore[assignment]
    worker._producer = Producer()  # type: ignore[assignment]
    worker._reset(None, {})
    worker._last_snapshot = time.monotonic()  # no checkpoint in this test
    order: list[str] = []
    apply = worker._apply
    worker._apply = lambda records: apply(  # type: ignore[method-assign]
        r for r in records if not order.append(r.topic)
    )

    later = _event(
        "s1", "spend.recorded", "2025-01-01T00:00:02Z", {"client": "a", "vendor": "b", "amount": 5}
    )
    await worker._step({spend: [_record(spend, 0, 1735689602000, later)]})
    assert worker._merge.buffered == 1  # other partitions idle: it waits the grace

    time.sleep(0.3)  # noqa: ASYNC251 - the loop busy past the grace, fetching nothing
    await worker._step({})
    assert worker._merge.buffered == 1 and order == []  # still waiting

    earlier = _event(
        "o1", "ownership.stake", "2025-01-01T00:00:01Z", {"owner": "x", "asset": "b", "percent": 30}
    )
    reader.highwaters[owner] = 1
    await worker._step({owner: [_record(owner, 0, 1735689601000, earlier)]})
    worker._fetch_clock += 0.25  # then waited in fetches for longer than the grace
    await worker._step({})
    assert order == [names.ownership, names.spend]  # event-time order kept
    assert worker.counts["applied"] == 2
