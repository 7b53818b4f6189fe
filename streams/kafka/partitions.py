"""Reading a partition to its true end: the one helper for it.

On Tansu, ListOffsets LATEST answers short (docs/notes-faust-tansu.md), so the end of a
partition is the high watermark a *fetch response* reports. ``true_ends`` gets it: seek
just before the ListOffsets answer (exact on Kafka, a lower bound on Tansu) and fetch
until every partition has reported its high watermark. The readers below stop there.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

__all__ = ["batches_to_end", "read_range", "read_to_end", "true_ends"]


async def true_ends(
    consumer: AIOKafkaConsumer, tps: Iterable[TopicPartition], wait: float = 10.0
) -> dict[TopicPartition, int]:
    """The end of each partition as a fetch response reports it (assigned partitions;
    their positions are left just before the end)."""
    tps = list(tps)
    lower = await consumer.end_offsets(tps)
    for tp in tps:
        consumer.seek(tp, max(lower[tp] - 1, 0))
    ends: dict[TopicPartition, int] = {}
    deadline = time.monotonic() + wait
    while True:
        for tp in tps:
            hw = consumer.highwater(tp)
            if hw is not None and tp not in ends:
                ends[tp] = hw
        if len(ends) == len(tps):
            return ends
        if time.monotonic() > deadline:
            missing = ", ".join(f"{tp.topic}[{tp.partition}]" for tp in tps if tp not in ends)
            raise TimeoutError(f"no fetch response for {missing}")
        await consumer.getmany(*[tp for tp in tps if tp not in ends], timeout_ms=100)


async def read_range(
    consumer: AIOKafkaConsumer, tp: TopicPartition, start: int, end: int, wait: float = 30.0
) -> list[Any]:
    """Records with ``start <= offset < end`` (``end`` must be a true end or below it)."""
    out: list[Any] = []
    if start >= end:
        return out
    consumer.seek(tp, start)
    deadline = time.monotonic() + wait
    while True:
        batch = await consumer.getmany(tp, timeout_ms=200)
        for record in batch.get(tp, ()):
            if record.offset >= end:
                return out
            out.append(record)
        if out and out[-1].offset >= end - 1:
            return out
        if time.monotonic() > deadline:
            raise TimeoutError(f"reading {tp.topic}[{tp.partition}] {start}..{end} timed out")
        await asyncio.sleep(0)


async def read_to_end(consumer: AIOKafkaConsumer, tp: TopicPartition, start: int = 0) -> list[Any]:
    """Every record of a partition from ``start`` to its end as of now."""
    (end,) = (await true_ends(consumer, [tp])).values()
    return await read_range(consumer, tp, start, end)


async def batches_to_end(
    consumer: AIOKafkaConsumer,
    tp: TopicPartition,
    start: int,
    stall: float = 30.0,
    max_records: int = 10_000,
) -> AsyncIterator[list[Any]]:
    """The records from ``start`` to the end as of the first fetch, batch by batch, for a
    reader that keeps only what it needs of each; a ``TimeoutError`` when no record came
    for ``stall`` seconds before the end."""
    consumer.seek(tp, start)
    end: int | None = None
    deadline = time.monotonic() + stall
    while True:
        batch = await consumer.getmany(tp, timeout_ms=50, max_records=max_records)
        records = batch.get(tp, [])
        if records:
            yield records
            deadline = time.monotonic() + stall  # progress: wait on
        if end is None:
            end = consumer.highwater(tp)  # the first fetch response of the reader
        if end is not None and await consumer.position(tp) >= end:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"reading {tp.topic}[{tp.partition}] stalled (end {end})")
