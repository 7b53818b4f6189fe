"""``stakewatch alerts``: alert records from the alerts topic as JSON lines on stdout.

A group-less consumer with manual assignment: no group join to wait for (seconds on Tansu)
and no offsets committed on behalf of a person watching. The fetch wait is 100 ms because
Tansu answers an empty fetch only after half of it (``docs/notes-faust-tansu.md`` §d).

"The end" is read from a fetch response's high watermark, not ListOffsets: on Tansu,
ListOffsets LATEST is the last batch's start + 1 and would replay part of that batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping
from typing import Any, BinaryIO

import orjson
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from streams.kafka.clients import make_consumer
from streams.kafka.partitions import true_ends
from streams.kafka.publish import TopicMissingError
from streams.signals import on_signals

__all__ = ["tail_alerts"]

FETCH_WAIT_MS = 100
END_TIMEOUT = 10.0


async def tail_alerts(
    bootstrap: str,
    topic: str,
    out: BinaryIO,
    *,
    from_beginning: bool = False,
    idle: float | None = 2.0,
    on_ready: Callable[[], None] | None = None,
    handle_signals: bool = False,
    client: Mapping[str, Any] | None = None,
    render: Callable[[ConsumerRecord], bytes] | None = None,
) -> int:
    """Write each record's value as one line to ``out``; return how many were written.
    ``render`` turns a record into its line instead (``stakewatch dead-letters``).

    ``idle=None`` follows until cancelled (or SIGINT/SIGTERM with ``handle_signals``);
    otherwise returns after ``idle`` seconds with no new record. ``on_ready`` is called once
    the start position is fixed: records produced after it are printed. ``client``: the
    cluster's security options (``Connection.client_options``).
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = on_signals(loop, stop.set) if handle_signals else []
    consumer = make_consumer(
        bootstrap,
        client,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=FETCH_WAIT_MS,
    )
    written = 0
    try:
        await consumer.start()  # inside the try: a failed start is stopped too (no "Unclosed")
        if topic not in await consumer.topics():  # a named metadata request would create it
            raise TopicMissingError(
                f"topic {topic!r} does not exist; run `stakewatch topics create`"
            )
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        consumer.assign(tps)
        if from_beginning:
            await consumer.seek_to_beginning(*tps)
        else:
            await _seek_to_true_end(consumer, tps)
        if on_ready is not None:
            on_ready()
        last = time.monotonic()
        while not stop.is_set():
            wait = 0.5 if idle is None else idle - (time.monotonic() - last)
            if wait <= 0:
                break
            fetch = asyncio.ensure_future(consumer.getmany(timeout_ms=int(min(wait, 0.5) * 1000)))
            stopped = asyncio.ensure_future(stop.wait())
            await asyncio.wait({fetch, stopped}, return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
            if not fetch.done():
                fetch.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await fetch
                break
            batches = fetch.result()
            lines = [
                render(r) if render else _line(r.value) for tp in tps for r in batches.get(tp, ())
            ]
            if lines:
                out.write(b"".join(lines))
                out.flush()
                written += len(lines)
                last = time.monotonic()
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
        await consumer.stop()
    return written


def _line(value: bytes | None) -> bytes:
    """The record value on one line (re-serialised only if it spans several)."""
    value = value or b"null"
    if b"\n" in value:
        try:
            value = orjson.dumps(orjson.loads(value))
        except orjson.JSONDecodeError:
            value = orjson.dumps(value.decode("utf-8", "replace"))
    return value + b"\n"


async def _seek_to_true_end(consumer: AIOKafkaConsumer, tps: list[TopicPartition]) -> None:
    """Seek every partition to its high watermark as the next fetch response reports it."""
    for tp, end in (await true_ends(consumer, tps, END_TIMEOUT)).items():
        consumer.seek(tp, end)
