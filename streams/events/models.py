"""CloudEvents 1.0 envelopes and the typed `data` of every Stakewatch event (SPEC §1).

Models are frozen and strict: they are validated once, at the boundary, and nothing inside
the engine checks them again. Each event type is its own envelope class, discriminated by
`type`, so one parse of the raw bytes yields a fully typed event.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "EVENT_TYPES",
    "ContractAmended",
    "ContractSigned",
    "ContractTerminated",
    "EntityRegistered",
    "Event",
    "Identifier",
    "OwnershipStake",
    "RivalryDeclared",
    "RivalryWithdrawn",
    "SpendRecorded",
]

SLUG_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,127}$"
SCHEME_PATTERN = r"^[A-Z0-9]+(-[A-Z0-9]+)+$"  # org-id.guide list codes: XI-LEI, GB-COH
MAX_MONEY = 1e15

Slug = Annotated[str, Field(pattern=SLUG_PATTERN)]
Text = Annotated[str, Field(min_length=1, max_length=256, pattern=r"^[^\x00-\x1f\x7f]+$")]
ContractId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$")]
DataClass = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$")]
Money = Annotated[float, Field(gt=0, le=MAX_MONEY)]
Percent = Annotated[float, Field(ge=0, le=100)]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, allow_inf_nan=False)


class OwnershipData(_Strict):
    owner: Slug
    asset: Slug
    percent: Percent
    status: Literal["announced", "closed", "cancelled"] = "closed"


class ContractSignedData(_Strict):
    contract_id: ContractId
    client: Slug
    vendor: Slug
    category: Text
    data_classes: Annotated[tuple[DataClass, ...], Field(max_length=64)]
    annual_value: Money | None = None
    ends_on: dt.date | None = None


class ContractAmendedData(_Strict):
    contract_id: ContractId
    data_classes: Annotated[tuple[DataClass, ...], Field(max_length=64)] | None = None
    annual_value: Money | None = None
    ends_on: dt.date | None = None
    category: Text | None = None

    @model_validator(mode="after")
    def _changes_something(self) -> ContractAmendedData:
        fields = {"data_classes", "annual_value", "ends_on", "category"}
        if not fields & self.model_fields_set:
            raise ValueError(
                "an amendment must carry data_classes, annual_value, ends_on or category"
            )
        if "data_classes" in self.model_fields_set and self.data_classes is None:
            raise ValueError("data_classes cannot be null")
        if "category" in self.model_fields_set and self.category is None:
            raise ValueError("category cannot be null")
        return self


class ContractTerminatedData(_Strict):
    contract_id: ContractId


class SpendData(_Strict):
    client: Slug
    vendor: Slug
    amount: Money
    contract_id: ContractId | None = None


class RivalryData(_Strict):
    a: Slug
    b: Slug
    sector: Text | None = None


class Identifier(_Strict):
    """A registry identifier: an org-id.guide scheme (``XI-LEI``, ``GB-COH``) and the id
    the registry gives (SPEC v2 §1)."""

    scheme: Annotated[str, Field(min_length=2, max_length=32, pattern=SCHEME_PATTERN)]
    id: Text


class EntityData(_Strict):
    id: Slug
    name: Text
    aliases: Annotated[tuple[Text, ...], Field(max_length=64)] = ()
    identifiers: Annotated[tuple[Identifier, ...], Field(max_length=64)] = ()


class _Envelope(BaseModel):
    """CloudEvents attributes; extension attributes are allowed and ignored."""

    model_config = ConfigDict(frozen=True, extra="allow", strict=True, allow_inf_nan=False)

    specversion: Literal["1.0"]
    id: Text
    source: Text
    time: AwareDatetime


class OwnershipStake(_Envelope):
    type: Literal["ownership.stake"]
    data: OwnershipData


class ContractSigned(_Envelope):
    type: Literal["contract.signed"]
    data: ContractSignedData


class ContractAmended(_Envelope):
    type: Literal["contract.amended"]
    data: ContractAmendedData


class ContractTerminated(_Envelope):
    type: Literal["contract.terminated"]
    data: ContractTerminatedData


class SpendRecorded(_Envelope):
    type: Literal["spend.recorded"]
    data: SpendData


class RivalryDeclared(_Envelope):
    type: Literal["rivalry.declared"]
    data: RivalryData


class RivalryWithdrawn(_Envelope):
    type: Literal["rivalry.withdrawn"]
    data: RivalryData


class EntityRegistered(_Envelope):
    type: Literal["entity.registered"]
    data: EntityData


Event = Annotated[
    OwnershipStake
    | ContractSigned
    | ContractAmended
    | ContractTerminated
    | SpendRecorded
    | RivalryDeclared
    | RivalryWithdrawn
    | EntityRegistered,
    Field(discriminator="type"),
]

EVENT_CLASSES: dict[str, type[_Envelope]] = {
    cls.model_fields["type"].annotation.__args__[0]: cls  # type: ignore[union-attr]
    for cls in (
        OwnershipStake,
        ContractSigned,
        ContractAmended,
        ContractTerminated,
        SpendRecorded,
        RivalryDeclared,
        RivalryWithdrawn,
        EntityRegistered,
    )
}
EVENT_TYPES: tuple[str, ...] = tuple(EVENT_CLASSES)
