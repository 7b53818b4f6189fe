"""Record headers Stakewatch writes and reads: dead letters, the quiet flag, alert causes.

Dead-letter records on Kafka keep the original bytes as the value and the reason in
headers: an operator can fix a producer and re-publish the record as it was; the headers
carry a one-line reason and where the record came from. ``QUIET`` marks input that must
page nobody (``replay --no-deliver``); the worker copies it, with the cause, onto the alert
records it causes (``alert_headers``).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

import orjson

from streams.events import Rejection

__all__ = ["QUIET", "alert_headers", "dead_letter_headers", "dead_letter_json", "read_dead_letter"]

QUIET = ("stakewatch-deliver", b"no")
"""Input header set by ``stakewatch replay --no-deliver``; copied onto the alert records it
causes, so the delivery side records them as told without paging anyone."""


def alert_headers(cause: Any) -> list[tuple[str, bytes]]:
    """Where an alert record came from (for logs and tracing), plus the quiet flag."""
    headers = [
        ("source_topic", cause.topic.encode()),
        ("source_partition", str(cause.partition).encode()),
        ("source_offset", str(cause.offset).encode()),
        ("source_timestamp", str(cause.timestamp).encode()),
    ]
    if QUIET in cause.headers:
        headers.append(QUIET)
    return headers


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
