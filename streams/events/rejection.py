"""Why an event was not applied: the bounded set of rejection codes and the rejection.

The codes are the one list the decoder, the engine, the metrics' ``reason`` label, the
dead-letter headers and docs/decisions.md ("Rejections") share; a test holds the docs to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Rejection", "RejectionCode"]


class RejectionCode(StrEnum):
    """Every rejection code, in the order of checks (docs/decisions.md)."""

    TOO_LARGE = "too_large"
    INVALID_JSON = "invalid_json"
    UNKNOWN_TYPE = "unknown_type"
    SCHEMA = "schema"
    SAME_PARTY = "same_party"
    DUPLICATE = "duplicate"
    STALE = "stale"
    FUTURE = "future"
    UNKNOWN_CONTRACT = "unknown_contract"
    CONTRACT_EXISTS = "contract_exists"
    CONTRACT_MISMATCH = "contract_mismatch"
    IDENTIFIER_CLASH = "identifier_clash"


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why an event was not applied: a bounded `code` (metric label) and a one-line `detail`."""

    code: RejectionCode
    detail: str

    def __str__(self) -> str:
        return f"{self.code.value}: {self.detail}"
