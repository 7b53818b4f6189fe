"""Raw bytes in, a typed event or a one-line rejection out — the only validation boundary."""

from __future__ import annotations

import datetime as dt

import orjson
from pydantic import TypeAdapter, ValidationError

from streams.events.models import EVENT_TYPES, Event
from streams.events.rejection import Rejection, RejectionCode

__all__ = ["MAX_RECORD_BYTES", "Rejection", "RejectionCode", "decode", "event_adapter"]

MAX_RECORD_BYTES = 64 * 1024

event_adapter: TypeAdapter[Event] = TypeAdapter(Event)


def decode(raw: bytes) -> Event | Rejection:
    """Parse and validate one record; never raises for any input bytes."""
    if len(raw) > MAX_RECORD_BYTES:
        return Rejection(
            RejectionCode.TOO_LARGE, f"record is {len(raw)} bytes, limit {MAX_RECORD_BYTES}"
        )
    try:
        event = event_adapter.validate_json(raw)
    except ValidationError as exc:
        return _diagnose(raw, exc)
    except (ValueError, RecursionError) as exc:  # pragma: no cover - defensive
        return Rejection(RejectionCode.INVALID_JSON, _one_line(str(exc)))
    return _same_party(event) or _time_range(event) or event


_EARLIEST = dt.datetime(1900, 1, 1, tzinfo=dt.UTC)
_LATEST = dt.datetime(2200, 1, 1, tzinfo=dt.UTC)


def _time_range(event: Event) -> Rejection | None:
    """Event times must be real instants: a local date near year 1 or 9999 with a large
    offset leaves the datetime range once in UTC (and no deal is dated there)."""
    try:
        utc = event.time.astimezone(dt.UTC)
    except (OverflowError, ValueError):
        utc = None
    if utc is None or not _EARLIEST <= utc < _LATEST:
        return Rejection(
            RejectionCode.SCHEMA, f"time {event.time.isoformat()} is outside 1900..2200 UTC"
        )
    return None


_PARTIES = {
    "ownership.stake": ("owner", "asset"),
    "contract.signed": ("client", "vendor"),
    "spend.recorded": ("client", "vendor"),
    "rivalry.declared": ("a", "b"),
    "rivalry.withdrawn": ("a", "b"),
}


def _same_party(event: Event) -> Rejection | None:
    fields = _PARTIES.get(event.type)
    if fields is None:
        return None
    left, right = fields
    a = getattr(event.data, left)
    if a == getattr(event.data, right):
        return Rejection(RejectionCode.SAME_PARTY, f"{left} and {right} are both {a!r}")
    return None


def _diagnose(raw: bytes, exc: ValidationError) -> Rejection:
    """Slow path: say precisely why a record failed, without echoing large input back."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        return Rejection(RejectionCode.INVALID_JSON, _one_line(str(err)))
    if not isinstance(obj, dict):
        return Rejection(
            RejectionCode.INVALID_JSON, f"expected a JSON object, got {type(obj).__name__}"
        )
    etype = obj.get("type")
    if isinstance(etype, str) and etype not in EVENT_TYPES:
        return Rejection(RejectionCode.UNKNOWN_TYPE, f"unknown type {_clip(etype)!r}")
    errors = exc.errors(include_url=False, include_input=False)
    first = errors[0]
    loc = ".".join(str(p) for p in first["loc"] if not _is_tag(p)) or "event"
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    return Rejection(RejectionCode.SCHEMA, _one_line(f"{loc}: {first['msg']}{more}"))


def _is_tag(part: object) -> bool:
    return isinstance(part, str) and part in EVENT_TYPES


def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _one_line(text: str) -> str:
    return _clip(" ".join(text.split()), 200)
