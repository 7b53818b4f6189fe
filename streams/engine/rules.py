"""The fixed parts of the rules, each in one place: severities, alert statuses, the
threshold comparison and the rounding of published figures (docs/rules.md §5–6,
docs/decisions.md "Arithmetic").

The engine, the queries, the metrics, the API and the receivers import these; none of them
spells a severity list or a rounding of its own. The settable rules (threshold, severity
clauses, sensitive classes, window, path limits) are `EngineConfig` (config.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final, Literal, get_args

__all__ = [
    "JUDGED_DECIMALS",
    "SEVERITIES",
    "SEVERITY_RANK",
    "SPEND_DECIMALS",
    "STAKE_DECIMALS",
    "STATUSES",
    "Severity",
    "Status",
    "judged_stake",
    "meets_threshold",
    "shown_spend",
    "shown_stake",
]

Severity = Literal["critical", "high", "warning"]
#: Severities from most to least urgent; `warning` is what no severity clause matched.
SEVERITIES: Final[tuple[Severity, ...]] = get_args(Severity)
#: Sort key: 0 for the most urgent.
SEVERITY_RANK: Final[Mapping[str, int]] = MappingProxyType({s: i for i, s in enumerate(SEVERITIES)})

Status = Literal["firing", "resolved"]
#: An alert record's status: a conflict opened or changed severity, or it ended.
STATUSES: Final[tuple[Status, ...]] = get_args(Status)

JUDGED_DECIMALS: Final = 9  # threshold tests and severity clauses read the stake so rounded
STAKE_DECIMALS: Final = 6  # stakes and percents as records and queries print them
SPEND_DECIMALS: Final = 2  # spend_365d as records and queries print it


def judged_stake(stake: float) -> float:
    """The stake as the threshold and the severity clauses judge it.

    Stakes are products of holdings along paths and carry float noise (58 % of 50 % comes
    out 28.999999999999996); rounded to nine decimals, a stake that is exactly the threshold
    on paper counts as at it."""
    return round(stake, JUDGED_DECIMALS)


def meets_threshold(stake: float, threshold: float) -> bool:
    """Whether an effective stake is at or above the conflict threshold: the one place the
    comparison lives, so the engine, the queries and the receivers' wording never disagree."""
    return judged_stake(stake) >= threshold


def shown_stake(stake: float) -> float:
    """A stake or percent as alert records and queries publish it."""
    return round(stake, STAKE_DECIMALS)


def shown_spend(amount: float) -> float:
    """A spend figure (spend_365d) as alert records and queries publish it."""
    return round(amount, SPEND_DECIMALS)
