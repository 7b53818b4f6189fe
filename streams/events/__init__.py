"""Event schemas (SPEC §1) and the bytes → event boundary."""

from streams.events.decode import MAX_RECORD_BYTES, decode, event_adapter
from streams.events.models import (
    EVENT_TYPES,
    ContractAmended,
    ContractSigned,
    ContractTerminated,
    EntityRegistered,
    Event,
    OwnershipStake,
    RivalryDeclared,
    RivalryWithdrawn,
    SpendRecorded,
)
from streams.events.rejection import Rejection, RejectionCode

__all__ = [
    "EVENT_TYPES",
    "MAX_RECORD_BYTES",
    "ContractAmended",
    "ContractSigned",
    "ContractTerminated",
    "EntityRegistered",
    "Event",
    "OwnershipStake",
    "Rejection",
    "RejectionCode",
    "RivalryDeclared",
    "RivalryWithdrawn",
    "SpendRecorded",
    "decode",
    "event_adapter",
]
