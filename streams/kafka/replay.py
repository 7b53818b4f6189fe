"""``stakewatch replay``: NDJSON events onto their topics, keyed and stamped with event time.

Only decode-level checks happen here (``streams.events.decode``): a line that does not decode
goes to the dead-letter topic with its original bytes and the reason in headers. State-level
checks (unknown contract, duplicate id) need the engine's state and are the worker's job.

Lines are read in blocks by a thread (``read1``), so a slow pipe on stdin neither stalls the
producer nor holds back lines until a large batch fills. Each block is archived (embedded
mode) and handed to the producer as record batches; one flush at the end waits for delivery.

``deliver=False`` (``--no-deliver``) stamps every event with the ``QUIET`` header: the worker
copies it onto the alert records those events cause, and the delivery agent records them
in the notification log as told without sending them. That is how old history is loaded
into a fresh deployment without paging anyone (docs/alerts.md).

``mode`` picks the CloudEvents content mode of the records (SPEC v2 §1): ``structured``
(the line as the value, ``content-type: application/cloudevents+json``) or ``binary`` (the
attributes as ``ce_`` headers, the data as the value; ``streams.events.kafka_binding``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from streams.events import Rejection, decode
from streams.events.kafka_binding import CONTENT_TYPE, STRUCTURED, to_binary
from streams.kafka.archive import ArchivedRecord
from streams.kafka.connect import Connection
from streams.kafka.headers import QUIET, dead_letter_headers
from streams.kafka.publish import make_producer
from streams.kafka.topics import route

__all__ = [
    "DEAD_LETTER_MAX_VALUE",
    "MODES",
    "ReplaySummary",
    "format_summary",
    "read_blocks",
    "replay",
]

MODES = ("structured", "binary")

# A dead letter keeps the original bytes; beyond this (far above MAX_RECORD_BYTES, so only
# junk) it keeps a prefix and says so in a header, since Kafka refuses records over ~1 MB.
DEAD_LETTER_MAX_VALUE = 256 * 1024
BLOCK_BYTES = 1 << 20
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MS = dt.timedelta(milliseconds=1)


@dataclass(slots=True)
class ReplaySummary:
    lines: int = 0
    blank: int = 0
    published: Counter[str] = field(default_factory=Counter)  # events per topic
    dead_lettered: Counter[str] = field(default_factory=Counter)  # lines per reason code
    dead_letter_topic: str = ""
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "lines": self.lines,
            "blank_lines": self.blank,
            "published": sum(self.published.values()),
            "published_by_topic": dict(sorted(self.published.items())),
            "dead_lettered": sum(self.dead_lettered.values()),
            "dead_lettered_by_reason": dict(sorted(self.dead_lettered.items())),
            "dead_letter_topic": self.dead_letter_topic,
            "seconds": round(self.seconds, 3),
        }


def event_time_ms(when: dt.datetime) -> int:
    """Exact epoch milliseconds (floor), without float rounding."""
    return (when - _EPOCH) // _MS


async def replay(
    conn: Connection,
    source: BinaryIO,
    *,
    source_name: str | None = None,
    rate: float | None = None,
    progress: Callable[[int], None] | None = None,
    deliver: bool = True,
    on_rejected: Callable[[int, bytes, Rejection], None] | None = None,
    mode: str = "structured",
) -> ReplaySummary:
    """Publish every line of ``source``; return the counts. ``progress(n)``: n bytes consumed;
    ``deliver=False``: the alerts these events cause are recorded, never sent;
    ``on_rejected(line number, raw, rejection)`` for each line dead-lettered; ``mode``: the
    records' CloudEvents content mode."""
    if rate is not None and rate <= 0:
        raise ValueError(f"rate must be > 0, got {rate}")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    binary = mode == "binary"
    names = conn.names
    summary = ReplaySummary(dead_letter_topic=names.dead_letter)
    extra = [("source_file", source_name.encode())] if source_name else []
    quiet = () if deliver else (QUIET,)
    structured = ((CONTENT_TYPE, STRUCTURED.encode()), *quiet)
    started = time.perf_counter()
    producer = make_producer(conn.bootstrap, conn.client_options, linger_ms=0 if rate else 5)
    try:
        await producer.start()  # inside the try: a failed start is stopped too (no "Unclosed")
        publisher = conn.publisher(producer)
        await publisher.require([*names.inputs, names.dead_letter])  # before reading anything
        step = max(1, int(rate / 20)) if rate else None  # ~20 paced sends per second
        async for first_line, lines, consumed in read_blocks(source):
            records = []
            for number, raw in enumerate(lines, start=first_line):
                if not raw.strip():
                    summary.blank += 1
                    continue
                summary.lines += 1
                event = decode(raw)
                if isinstance(event, Rejection):
                    summary.dead_lettered[event.code.value] += 1
                    if on_rejected is not None:
                        on_rejected(number, raw, event)
                    records.append(_dead_letter(names.dead_letter, raw, event, number, extra))
                    continue
                topic, key = route(names, event)
                summary.published[topic] += 1
                stamp = event_time_ms(event.time)
                if binary:
                    headers, value = to_binary(raw)
                    records.append(ArchivedRecord(topic, key, value, stamp, (*headers, *quiet)))
                else:
                    records.append(ArchivedRecord(topic, key, raw, stamp, structured))
            if step is None:
                await publisher.publish(records)
            else:
                for i in range(0, len(records), step):
                    await _pace(started, publisher.sent, rate or 1.0)
                    await publisher.publish(records[i : i + step])
            if progress is not None:
                progress(consumed)
        await publisher.flush()
    finally:
        await producer.stop()
    summary.seconds = time.perf_counter() - started
    return summary


def _dead_letter(
    topic: str, raw: bytes, rejection: Rejection, line: int, extra: list[tuple[str, bytes]]
) -> ArchivedRecord:
    headers = dead_letter_headers(rejection, line=line) + extra
    if len(raw) > DEAD_LETTER_MAX_VALUE:
        headers.append(("truncated_from", str(len(raw)).encode()))
        raw = raw[:DEAD_LETTER_MAX_VALUE]
    now_ms = time.time_ns() // 1_000_000
    return ArchivedRecord(topic, None, raw, now_ms, tuple(headers))


async def _pace(started: float, sent: int, rate: float) -> None:
    delay = started + sent / rate - time.perf_counter()
    if delay > 0:
        await asyncio.sleep(delay)


async def read_blocks(
    source: BinaryIO, block: int = BLOCK_BYTES
) -> AsyncIterator[tuple[int, list[bytes], int]]:
    """``(first line number, lines without newlines, bytes consumed)`` as data arrives.

    A daemon thread does the blocking reads, so the event loop (and the producer's sender)
    keeps running while stdin waits, and Ctrl-C is not held up by a blocked read.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[list[bytes], int] | BaseException | None] = asyncio.Queue(4)
    read1 = getattr(source, "read1", source.read)

    def put(item: tuple[list[bytes], int] | BaseException | None) -> None:
        asyncio.run_coroutine_threadsafe(queue.put(item), loop).result()

    def pump() -> None:
        partial: list[bytes] = []  # pieces of a line not yet ended
        pending = 0  # bytes read but not yet reported
        try:
            while data := read1(block):
                pending += len(data)
                if b"\n" not in data:
                    partial.append(data)
                    continue
                first, *lines = data.split(b"\n")
                partial.append(first)
                lines.insert(0, b"".join(partial))
                last = lines.pop()
                partial = [last] if last else []
                put(([line.rstrip(b"\r") for line in lines], pending))
                pending = 0
            tail = b"".join(partial)
            put(([tail.rstrip(b"\r")] if tail else [], pending))
            put(None)
        except RuntimeError:  # the loop closed: nobody is listening any more
            return
        except BaseException as exc:  # an OSError reading: report it in the loop
            try:
                put(exc)
            except RuntimeError:
                return

    threading.Thread(target=pump, name="replay-reader", daemon=True).start()
    number = 1
    while (item := await queue.get()) is not None:
        if isinstance(item, BaseException):
            raise item
        lines, consumed = item
        yield number, lines, consumed
        number += len(lines)


def format_summary(summary: ReplaySummary) -> str:
    """The human-readable counts ``stakewatch replay`` prints when done."""
    doc = summary.as_dict()
    rate = doc["lines"] / summary.seconds if summary.seconds > 0 else 0.0
    out = [f"published {doc['published']} events in {summary.seconds:.2f}s ({rate:,.0f} lines/s)"]
    out += [f"  {topic}: {n}" for topic, n in doc["published_by_topic"].items()]
    out.append(f"dead-lettered {doc['dead_lettered']} lines to {summary.dead_letter_topic}")
    out += [f"  {code}: {n}" for code, n in doc["dead_lettered_by_reason"].items()]
    if summary.blank:
        out.append(f"skipped {summary.blank} blank lines")
    return "\n".join(out)
