"""Dead-letter records on Kafka: the original bytes as the value, the reason in headers.

Keeping the value byte-for-byte lets an operator fix a producer and re-publish the record
as it was; the headers carry a one-line reason and where the record came from.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

import orjson

from streams.events import Rejection

__all__ = ["dead_letter_headers", "dead_letter_json", "read_dead_letter"]


def dead_letter_headers(
    rejection: Rejection,
    *,
    source_topic: str | None = None,
    partition: int | None = None,
    offset: int | None = None,
    line: int | None = None,
) -> list[tuple[str, bytes]]:
    """Kafka headers for a dead letter: ``reason``, ``code`` and the source coordinates."""
    headers = [("reason", str(rejection).encode()), ("code", rejection.code.value.encode())]
    for name, value in (
        ("source_topic", source_topic),
        ("source_partition", partition),
        ("source_offset", offset),
        ("source_line", line),
    ):
        if value is not None:
            headers.append((name, str(value).encode()))
    return headers


def read_dead_letter(value: bytes | None, headers: Sequence[tuple[str, bytes]]) -> dict[str, Any]:
    """A dead-letter record as a dict (for `stakewatch` output and for tests)."""
    doc: dict[str, Any] = {k: v.decode("utf-8", "replace") for k, v in headers}
    for name in ("source_partition", "source_offset", "source_line"):
        if name in doc:
            doc[name] = int(doc[name])
    doc["original"] = value or b""
    return doc


def dead_letter_json(value: bytes | None, headers: Sequence[tuple[str, bytes]]) -> bytes:
    """A dead-letter record as one JSON line, in the shape ``backtest --dead-letter`` writes:
    ``reason``, ``code``, where it came from, and the original (text, or base64)."""
    doc = read_dead_letter(value, headers)
    raw = doc.pop("original")
    try:
        doc["original"] = raw.decode("utf-8")
    except UnicodeDecodeError:
        doc["original_base64"] = base64.b64encode(raw).decode("ascii")
    return orjson.dumps(doc) + b"\n"
