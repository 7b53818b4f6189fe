"""The embedded mode's append-only event archive: what makes a Tansu restart lose nothing.

Tansu keeps everything in memory (``docs/notes-faust-tansu.md``), so every record our tools publish
to the input and dead-letter topics is first appended here, and a fresh broker is refilled
from it in archive order with the original keys, partitions, timestamps and headers.

Format (``archive-v1.ndjson``): one JSON object per line,
``{"topic", "partition", "key", "value", "ts", "headers": [[name, value], ...]}``, where every
byte string is a JSON string when it is UTF-8 and ``{"b64": "..."}`` otherwise, so values
round-trip byte for byte. Writers take an exclusive ``flock`` per batch and ``fsync`` it, so
several processes can append. A crash mid-write leaves a torn last line: readers skip any
line that does not parse (with a warning), and the next writer ends the torn line first so
it cannot swallow the record written after it.

``topics.json`` beside it remembers the topics (partition counts, configs) earlier brokers
had, so a refill recreates them alike and every key keeps its partition.
"""

from __future__ import annotations

import base64
import fcntl
import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from streams.kafka.topics import TopicSpec

__all__ = ["ARCHIVE_FILE", "Archive", "ArchivedRecord", "ReadStats", "decode_line", "encode_line"]

ARCHIVE_FILE = "archive-v1.ndjson"
TOPICS_FILE = "topics.json"
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ArchivedRecord:
    """One produced record, as the broker should see it again after a refill."""

    topic: str
    key: bytes | None
    value: bytes
    timestamp_ms: int
    headers: tuple[tuple[str, bytes], ...] = ()
    partition: int | None = None  # None: let the key decide (as the producer would)


def _enc(raw: bytes) -> str | dict[str, str]:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return {"b64": base64.b64encode(raw).decode("ascii")}


def _dec(doc: Any) -> bytes:
    if isinstance(doc, str):
        return doc.encode("utf-8")
    if isinstance(doc, dict) and isinstance(doc.get("b64"), str):
        return base64.b64decode(doc["b64"], validate=True)
    raise ValueError(f"not an encoded byte string: {doc!r:.40}")


def encode_line(record: ArchivedRecord) -> bytes:
    """The archive line for one record, newline included."""
    doc: dict[str, Any] = {"topic": record.topic}
    if record.partition is not None:
        doc["partition"] = record.partition
    doc["key"] = None if record.key is None else _enc(record.key)
    doc["value"] = _enc(record.value)
    doc["ts"] = record.timestamp_ms
    if record.headers:
        doc["headers"] = [[name, _enc(value)] for name, value in record.headers]
    return orjson.dumps(doc) + b"\n"


def decode_line(line: bytes) -> ArchivedRecord:
    """Parse one archive line; ``ValueError`` when it is not a complete record."""
    try:
        doc = orjson.loads(line)
        topic, key, ts = doc["topic"], doc["key"], doc["ts"]
        partition = doc.get("partition")
        if not isinstance(topic, str) or not topic or type(ts) is not int:
            raise ValueError("bad topic or ts")
        if partition is not None and (type(partition) is not int or partition < 0):
            raise ValueError("bad partition")
        headers = tuple((str(name), _dec(value)) for name, value in doc.get("headers", ()))
        return ArchivedRecord(
            topic=topic,
            key=None if key is None else _dec(key),
            value=_dec(doc["value"]),
            timestamp_ms=ts,
            headers=headers,
            partition=partition,
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"not an archive record: {exc}") from None


@dataclass(slots=True)
class ReadStats:
    """What a full read found: records returned and lines skipped as corrupt or torn."""

    records: int = 0
    skipped: int = 0
    skipped_lines: list[int] = field(default_factory=list)


class Archive:
    """The archive file in a data directory (created on first append)."""

    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        self.path = Path(data_dir) / ARCHIVE_FILE
        self.topics_path = Path(data_dir) / TOPICS_FILE

    def topic_specs(self) -> list[TopicSpec]:
        """The topics earlier brokers had, so a refill recreates them with the same partition
        counts (a key's partition, and so its order, then stays the same)."""
        try:
            doc = orjson.loads(self.topics_path.read_bytes())
            return [
                TopicSpec(name, int(t["partitions"]), config=t.get("config", {}))
                for name, t in doc.items()
            ]
        except FileNotFoundError:
            return []
        except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError) as exc:
            log.warning("%s unreadable, using the default topics: %s", self.topics_path, exc)
            return []

    def remember_topics(self, specs: Iterable[TopicSpec]) -> None:
        """Record topic specs (merged over the known ones by name), atomically."""
        known = {s.name: s for s in self.topic_specs()}
        known.update((s.name, s) for s in specs)
        doc = {
            name: {"partitions": s.partitions, "config": dict(s.config)}
            for name, s in sorted(known.items())
        }
        self.topics_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.topics_path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
        tmp.replace(self.topics_path)

    def append(self, records: Iterable[ArchivedRecord]) -> int:
        """Append records as one locked, fsynced write; return how many were written.

        Callers append *before* producing, so a record the broker has is never missing here.
        """
        lines = [encode_line(r) for r in records]
        if not lines:
            return 0
        data = b"".join(lines)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                log.warning("archive %s: ending a torn last line before appending", self.path)
                data = b"\n" + data
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)  # also releases the lock
        return len(lines)

    def read(self, stats: ReadStats | None = None) -> Iterator[ArchivedRecord]:
        """Every intact record in archive order; corrupt or torn lines are skipped with a warning.

        Reads up to the size seen under a shared lock, so a concurrent append is either
        wholly in or wholly out.
        """
        stats = stats if stats is not None else ReadStats()
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return
        with os.fdopen(fd, "rb") as f:
            fcntl.flock(fd, fcntl.LOCK_SH)
            end = os.fstat(fd).st_size
            fcntl.flock(fd, fcntl.LOCK_UN)
            position = 0
            for number, line in enumerate(f, start=1):
                position += len(line)
                if position > end:  # appended after we looked: not ours to read
                    line = line[: len(line) - (position - end)]
                if line.strip():
                    try:
                        record = decode_line(line)
                    except ValueError as exc:
                        why = "torn last line" if not line.endswith(b"\n") else str(exc)
                        stats.skipped += 1
                        stats.skipped_lines.append(number)
                        log.warning("archive %s line %d skipped: %s", self.path, number, why)
                    else:
                        stats.records += 1
                        yield record
                if position >= end:
                    break

    def __repr__(self) -> str:
        return f"Archive({str(self.path)!r})"
