"""The alert record of SPEC §3 as it arrives on the alerts topic, in files and in the API.

Validated once, at the boundary (``AlertRecord.from_json``); everything downstream in
``alerts`` trusts it. The model is frozen and forbids unknown fields so that a producer bug
(a renamed field) fails loudly instead of paging with a blank.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import orjson
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from streams.engine import DEFAULT_SENSITIVE, SEVERITIES, Severity, Status

__all__ = [
    "SENSITIVE_DATA_CLASSES",
    "SEVERITIES",
    "AlertRecord",
    "OwnershipPath",
    "Severity",
    "Status",
]

#: SPEC §1 default set of sensitive data classes (receivers take their own set).
SENSITIVE_DATA_CLASSES: frozenset[str] = DEFAULT_SENSITIVE

_SLUG = r"^[a-z0-9][a-z0-9._-]{0,127}$"
EntityId = Annotated[str, Field(pattern=_SLUG)]
Percent = Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)]


def _rfc3339(value: str) -> str:
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError("timestamp needs an offset (RFC 3339)")
    return value


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=False)


class OwnershipPath(_Frozen):
    """One simple ownership path ``[rival, …, vendor]`` and its product stake in percent."""

    path: tuple[EntityId, ...] = Field(min_length=2)
    stake: Percent


class AlertRecord(_Frozen):
    """SPEC §3 alert record (figures as described in ``docs/decisions.md``)."""

    dedup_key: str = Field(min_length=5, max_length=400)
    status: Status
    severity: Severity
    client: EntityId
    vendor: EntityId
    rival: EntityId
    stake: Percent
    controlled: bool
    pending: bool
    paths: tuple[OwnershipPath, ...] = ()
    active_contracts: tuple[str, ...] = ()
    data_classes: tuple[str, ...] = ()
    spend_365d: float = Field(ge=0, allow_inf_nan=False)
    event_id: str = Field(min_length=1, max_length=256)
    event_time: Annotated[str, AfterValidator(_rfc3339)]

    @model_validator(mode="after")
    def _key_matches_parties(self) -> AlertRecord:
        expected = f"{self.client}|{self.vendor}|{self.rival}"
        if self.dedup_key != expected:
            raise ValueError(f"dedup_key {self.dedup_key!r} is not client|vendor|rival")
        return self

    @classmethod
    def from_json(cls, raw: bytes | str) -> AlertRecord:
        """Parse one record (raises ``pydantic.ValidationError`` on anything malformed)."""
        return cls.model_validate_json(raw)

    def to_dict(self) -> dict[str, object]:
        """The SPEC §3 record as plain JSON-able data (field order as in the SPEC)."""
        return self.model_dump(mode="json")

    def to_json(self) -> bytes:
        """Compact JSON bytes of the SPEC record."""
        return orjson.dumps(self.to_dict())

    @property
    def event_datetime(self) -> dt.datetime:
        """``event_time`` as an aware UTC datetime."""
        return dt.datetime.fromisoformat(self.event_time.replace("Z", "+00:00")).astimezone(dt.UTC)

    @property
    def sensitive_classes(self) -> tuple[str, ...]:
        """``data_classes`` that are in the SPEC default sensitive set."""
        return tuple(c for c in self.data_classes if c in SENSITIVE_DATA_CLASSES)
