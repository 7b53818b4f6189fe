"""The alert record (SPEC §3): one shape on the alerts topic, in files and in the API."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson

__all__ = ["AlertRecord", "Figures", "by_value", "format_micros", "format_time"]

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def format_time(t: dt.datetime) -> str:
    """RFC 3339 in UTC with `Z`; microseconds only when there are some."""
    return t.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def format_micros(t: int) -> str:
    """`format_time` of the instant `t` microseconds after the epoch (the same string)."""
    return (_EPOCH + dt.timedelta(microseconds=t)).isoformat().replace("+00:00", "Z")


def by_value(record: Any) -> tuple[type, tuple[Any, ...]]:
    """``__reduce__`` for the frozen dataclasses snapshots hold: pickled as the class and its
    fields' values, which a compiled class (mypyc, setup.py) needs — it cannot be filled in
    field by field — and the pure one reads alike."""
    return type(record), tuple(getattr(record, f.name) for f in dataclasses.fields(record))


class Figures(NamedTuple):
    """One conflict's figures at the watermark (SPEC §3's rounding): `Engine.figures`.

    The same fields, in the same order, as the middle of `AlertRecord`, which is built
    from them (``AlertRecord(key, status, severity, client, vendor, rival, *figures, ...)``).
    """

    stake: float
    controlled: bool
    pending: bool
    paths: tuple[tuple[tuple[str, ...], float], ...]  # (path, stake), largest first
    active_contracts: tuple[str, ...]
    data_classes: tuple[str, ...]
    spend_365d: float

    def to_dict(self) -> dict[str, Any]:
        """The figures as the alert record's JSON shows them."""
        return {
            "stake": self.stake,
            "controlled": self.controlled,
            "pending": self.pending,
            "paths": [{"path": list(p), "stake": s} for p, s in self.paths],
            "active_contracts": list(self.active_contracts),
            "data_classes": list(self.data_classes),
            "spend_365d": self.spend_365d,
        }


@dataclass(frozen=True, slots=True)
class AlertRecord:
    dedup_key: str
    status: str  # firing | resolved
    severity: str  # critical | high | warning
    client: str
    vendor: str
    rival: str
    stake: float
    controlled: bool
    pending: bool
    paths: tuple[tuple[tuple[str, ...], float], ...]
    active_contracts: tuple[str, ...]
    data_classes: tuple[str, ...]
    spend_365d: float
    event_id: str
    event_time: str

    def __reduce__(self) -> tuple[type[AlertRecord], tuple[Any, ...]]:
        return by_value(self)

    @property
    def figures(self) -> Figures:
        return Figures(
            self.stake,
            self.controlled,
            self.pending,
            self.paths,
            self.active_contracts,
            self.data_classes,
            self.spend_365d,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "dedup_key": self.dedup_key,
            "status": self.status,
            "severity": self.severity,
            "client": self.client,
            "vendor": self.vendor,
            "rival": self.rival,
            **self.figures.to_dict(),
            "event_id": self.event_id,
            "event_time": self.event_time,
        }

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict())
