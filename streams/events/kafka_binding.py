"""The CloudEvents Kafka protocol binding: both content modes, one event (SPEC v2 §1).

A record with a ``ce_specversion`` header is in **binary** mode: the attributes travel as
``ce_``-prefixed headers, ``content-type`` is the data's media type and the value is the
``data`` itself. Any other record is **structured**: its value is the JSON event. The worker
turns a binary record into the structured bytes of the same event (`structured`) and hands
those to the one decoder (`decode` / `fast_decode`), so both modes pass exactly the same
validation and a bad binary record is rejected for the reason its structured twin would be.
What only a binary record can get wrong (a header that is not UTF-8, an attribute given
twice, data that is not JSON by its content type) is rejected here, as ``schema``.

`to_binary` is the other direction, for producers (`stakewatch replay --mode binary`), and
`cloudevent_headers` the attributes the alert records carry so that CloudEvents consumers can
route them. No Kafka client is imported: headers are ``(name, bytes)`` pairs.
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from streams.events.decode import MAX_RECORD_BYTES
from streams.events.rejection import Rejection, RejectionCode

__all__ = [
    "ALERT_TYPES",
    "BINARY_MARKER",
    "CONTENT_TYPE",
    "STRUCTURED",
    "cloudevent_headers",
    "structured",
    "to_binary",
]

Headers = Sequence[tuple[str, bytes]]

CONTENT_TYPE = "content-type"
BINARY_MARKER = "ce_specversion"
STRUCTURED = "application/cloudevents+json"
ALERT_TYPES = {
    "firing": b"io.stakewatch.alert.firing",
    "resolved": b"io.stakewatch.alert.resolved",
}
_PREFIX = "ce_"


def structured(value: bytes, headers: Headers) -> bytes | Rejection:
    """The record's event as structured JSON bytes: `value` itself unless the record is in
    binary mode (it has a ``ce_specversion`` header), else the event its headers and value
    make, or the reason none can be made. The caller checks ``headers`` is non-empty: the
    common record (no headers) costs no call."""
    for name, _ in headers:
        if name == BINARY_MARKER:
            return _from_binary(value, headers)
    return value


def _from_binary(value: bytes, headers: Headers) -> bytes | Rejection:
    attributes: dict[str, str] = {}
    content_type: str | None = None
    seen = 0
    try:
        for name, raw in headers:
            if name[:3] == _PREFIX:
                attributes[name[3:]] = raw.decode()
                seen += 1
            elif name == CONTENT_TYPE or name.lower() == CONTENT_TYPE:
                if content_type is not None:
                    return Rejection(RejectionCode.SCHEMA, "binary mode: content-type given twice")
                content_type = raw.decode()
    except (UnicodeDecodeError, AttributeError):
        return Rejection(
            RejectionCode.SCHEMA, "binary mode: a ce_ or content-type header is not UTF-8"
        )
    if seen != len(attributes):
        return Rejection(RejectionCode.SCHEMA, "binary mode: a ce_ header is given twice")
    if _RESERVED & attributes.keys():
        name = sorted(_RESERVED & attributes.keys())[0]
        return Rejection(RejectionCode.SCHEMA, f"binary mode: ce_{name} cannot be a header")
    if content_type is not None:
        if not _is_json(content_type):
            return Rejection(
                RejectionCode.SCHEMA,
                f"binary mode: content-type {content_type[:80]!r} is not JSON data",
            )
        attributes["datacontenttype"] = content_type
    # The attributes as the structured event's members, then the value as `data`: the
    # value is not parsed here, so a value that is not JSON is `invalid_json` from the
    # decoder, as it would be in a structured event.
    event = orjson.dumps(attributes)[:-1] + b',"data":' + (value or b"null") + b"}"
    if len(event) > MAX_RECORD_BYTES:
        return Rejection(
            RejectionCode.TOO_LARGE,
            f"record is {len(event)} bytes as an event, limit {MAX_RECORD_BYTES}",
        )
    return event


_RESERVED = frozenset({"data", "data_base64", "datacontenttype"})


def _is_json(media_type: str) -> bool:
    """``application/json`` or any ``+json`` type, parameters (``; charset=utf-8``) aside."""
    if media_type == "application/json":
        return True
    essence = media_type.split(";", 1)[0].strip().lower()
    return essence == "application/json" or essence.endswith("+json")


def to_binary(raw: bytes) -> tuple[list[tuple[str, bytes]], bytes]:
    """(headers, value) of a structured event in binary mode: every attribute but ``data``
    as a ``ce_`` header (strings as they are, other JSON values as JSON text), the data as
    the value with ``content-type: application/json``. The caller decoded `raw` already."""
    doc = orjson.loads(raw)
    data = doc.pop("data")
    media = doc.pop("datacontenttype", "application/json")
    headers = [(CONTENT_TYPE, str(media).encode())]
    for name, value in doc.items():
        text = value if isinstance(value, str) else orjson.dumps(value).decode()
        headers.append((_PREFIX + name, text.encode()))
    return headers, orjson.dumps(data)


def cloudevent_headers(
    status: str, source: str, event_id: str, event_time: str, subject: str
) -> list[tuple[str, bytes]]:
    """The CloudEvents attributes of an alert record in binary mode (docs/architecture.md):
    the record itself is the data, unchanged."""
    return [
        (CONTENT_TYPE, b"application/json"),
        ("ce_specversion", b"1.0"),
        ("ce_id", event_id.encode()),
        ("ce_source", source.encode()),
        ("ce_type", ALERT_TYPES[status]),
        ("ce_time", event_time.encode()),
        ("ce_subject", subject.encode()),
    ]
