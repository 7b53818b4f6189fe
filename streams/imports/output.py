"""Where imported events go: NDJSON on stdout, or the topics (as `stakewatch replay` puts
them); the report of what became no event; the entities an import can land on.

Publishing goes through `streams.kafka.replay.replay` itself, so imported events are routed,
keyed, stamped with event time, archived in embedded mode and marked as structured
CloudEvents exactly as replayed ones are.
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson
from aiokafka import TopicPartition

from streams.events.kafka_binding import structured
from streams.imports.identity import Directory
from streams.kafka import clients
from streams.kafka.connect import Connection
from streams.kafka.partitions import read_to_end
from streams.kafka.replay import ReplaySummary, replay

__all__ = ["known_from_topic", "publish", "read_entities", "summary_line", "write_report"]


def read_entities(directory: Directory, path: Path) -> list[str]:
    """Load ``--entities`` (NDJSON `entity.registered` events); the lines it could not use."""
    problems = []
    with open(path, "rb") as fh:
        for number, line in enumerate(fh, start=1):
            if line.strip():
                rejection = directory.add_registration(line.rstrip(b"\r\n"))
                if rejection is not None:
                    problems.append(f"{path}:{number}: {rejection}")
    return problems


async def known_from_topic(conn: Connection, directory: Directory) -> int:
    """Every `entity.registered` on the reference topic, in order (either content mode)."""
    consumer = clients.make_consumer(
        conn.bootstrap, conn.client_options, enable_auto_commit=False, fetch_max_wait_ms=50
    )
    await consumer.start()
    try:
        tp = TopicPartition(conn.names.reference, 0)
        consumer.assign([tp])
        records = await read_to_end(consumer, tp)
    finally:
        await consumer.stop()
    n = 0
    for r in records:
        raw = r.value or b""
        if r.headers:
            raw = structured(raw, r.headers)
        registers = isinstance(raw, bytes) and b"entity.registered" in raw
        if registers and directory.add_registration(raw) is None:
            n += 1
    return n


async def publish(conn: Connection, events: Iterable[bytes], name: str) -> ReplaySummary:
    """The events onto their topics, as `stakewatch replay` publishes a file."""
    return await replay(conn, io.BytesIO(b"\n".join(events) + b"\n"), source_name=name)


def write_report(path: Path | None, entries: Iterable[dict[str, Any]]) -> None:
    if path is None:
        return
    with open(path, "wb") as fh:
        for entry in entries:
            fh.write(orjson.dumps(entry) + b"\n")


def summary_line(what: str, events: list[bytes], report: list[dict[str, Any]]) -> str:
    """One paragraph for stderr: events by type, report entries by kind and code."""
    types = Counter(orjson.loads(e)["type"] for e in events)
    made = ", ".join(f"{n} {t}" for t, n in sorted(types.items())) or "none"
    lines = [f"{what}: {len(events)} events ({made})"]
    for kind in ("invalid", "skipped", "note"):
        codes = Counter(r["code"] for r in report if r["kind"] == kind)
        if codes:
            listed = ", ".join(f"{c} {n}" for c, n in sorted(codes.items()))
            label = {"invalid": "invalid", "skipped": "no event", "note": "notes"}[kind]
            lines.append(f"  {label}: {sum(codes.values())} ({listed})")
    return "\n".join(lines)
