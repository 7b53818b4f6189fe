"""Read a whole topic back, group-less, up to the high watermark of a fetch response
(ListOffsets LATEST is short on Tansu: docs/notes-faust-tansu.md)."""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition


async def read_topic(bootstrap: str, topic: str, within: float = 15.0) -> list[Any]:
    """Every record of ``topic``, ordered by (partition, offset)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=50
    )
    await consumer.start()
    got: list[Any] = []
    try:
        assert topic in await consumer.topics(), f"no topic {topic}"
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        async with asyncio.timeout(within):
            while True:
                batches = await consumer.getmany(timeout_ms=100)
                got += [r for rs in batches.values() for r in rs]
                hws = [consumer.highwater(tp) for tp in tps]
                if None not in hws:
                    positions = [await consumer.position(tp) for tp in tps]
                    if all(p >= hw for p, hw in zip(positions, hws, strict=True)):
                        break
    finally:
        await consumer.stop()
    return sorted(got, key=lambda r: (r.partition, r.offset))
