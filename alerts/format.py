"""Wording shared by the receivers: paths, percentages, money, summaries, resolution reasons.

A record carries each path's entity list and the path's effective stake, not the holding on
each edge; a one-hop path is written ``meta —49%→ scale-ai`` (its stake is the holding), a
longer one ``meta → holdco → scale-ai (30.6% effective)``.

What a record's figures *mean* (below the threshold? sensitive data?) is the engine's rule
set's to say: the functions here take the ``EngineConfig`` the worker runs with and ask it
(``meets_threshold``), so a message never words a record by other rules than made it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from alerts.record import SENSITIVE_DATA_CLASSES, AlertRecord, OwnershipPath
from streams.engine import EngineConfig

__all__ = [
    "SPEC_RULES",
    "format_money",
    "format_path",
    "format_paths",
    "format_percent",
    "headline",
    "resolution_reason",
    "sensitive",
    "summary",
]


#: The rule set a caller that names none gets: SPEC's defaults (the worker passes its own).
SPEC_RULES: Final = EngineConfig()


def format_percent(value: float) -> str:
    """``49.0`` → ``49%``, ``30.625`` → ``30.63%``, ``0.0123`` → ``0.01%``."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return f"{text}%"


def format_money(amount: float) -> str:
    """USD with one decimal and a unit: ``$150.0M``, ``$1.2B``, ``$12.5K``, ``$950``."""
    for unit, size in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(amount) >= size:
            return f"${amount / size:.1f}{unit}"
    return f"${amount:,.0f}"


def format_path(path: OwnershipPath) -> str:
    """One ownership path written out."""
    if len(path.path) == 2:
        owner, asset = path.path
        return f"{owner} —{format_percent(path.stake)}→ {asset}"
    return f"{' → '.join(path.path)} ({format_percent(path.stake)} effective)"


def format_paths(record: AlertRecord, limit: int = 5) -> list[str]:
    """The record's paths, largest first, with a closing "… and N more" when cut."""
    lines = [format_path(p) for p in record.paths[:limit]]
    if len(record.paths) > limit:
        lines.append(f"… and {len(record.paths) - limit} more")
    return lines


def sensitive(record: AlertRecord, classes: Iterable[str] = SENSITIVE_DATA_CLASSES) -> list[str]:
    """The record's data classes that are sensitive, in record order."""
    wanted = frozenset(classes)
    return [c for c in record.data_classes if c in wanted]


def headline(record: AlertRecord) -> str:
    """One line: what is wrong, for whom. Slack header, PagerDuty summary start, etc."""
    c, v, r = record.client, record.vendor, record.rival
    if record.status == "resolved":
        return f"RESOLVED: {c}'s vendor {v} and rival {r} no longer conflict"
    phrase = f"{record.severity.upper()}: {c}'s vendor {v} is {format_percent(record.stake)} "
    phrase += f"held by rival {r}"
    if record.controlled:
        phrase += " (controlled)"
    if record.pending:
        phrase += " [announced, not closed]"
    return phrase


def summary(record: AlertRecord, limit: int = 1024, rules: EngineConfig = SPEC_RULES) -> str:
    """Headline plus the figures, cut to ``limit`` characters (PagerDuty allows 1024)."""
    parts = [headline(record)]
    if record.status == "firing":
        if record.active_contracts:
            parts.append(f"contracts {', '.join(record.active_contracts)}")
        data = sensitive(record, rules.sensitive_data_classes)
        if data:
            parts.append(f"sensitive data {', '.join(data)}")
        parts.append(f"spend 365d {format_money(record.spend_365d)}")
    parts.append(f"[{record.dedup_key}]")
    text = " — ".join(parts[:-1]) + " " + parts[-1]
    return text if len(text) <= limit else text[: limit - 1] + "…"


def resolution_reason(
    record: AlertRecord, previous: AlertRecord | None = None, rules: EngineConfig = SPEC_RULES
) -> str:
    """Why a conflict ended, as far as two consecutive records of it can tell.

    The record alone says the state after the resolving event; with the previous record of
    the same conflict the change is named (which contracts ended, the stake's fall). When
    neither the contracts nor the stake explain it, the rivalry was withdrawn.
    """
    c, v, r = record.client, record.vendor, record.rival
    reasons: list[str] = []
    if previous is not None:
        ended = [x for x in previous.active_contracts if x not in record.active_contracts]
        if ended and not record.active_contracts:
            reasons.append(f"{c} ended {', '.join(ended)} (no active contract with {v} left)")
        elif not previous.active_contracts and previous.spend_365d > 0 and not record.spend_365d:
            reasons.append(f"{c}'s trailing-year spend with {v} aged out")
    elif not record.active_contracts:
        reasons.append(f"{c} has no active contract with {v}")
    if not rules.meets_threshold(record.stake):
        was = ""
        if previous is not None:
            was = f"from {format_percent(previous.stake)} "
            if previous.pending:
                was = f"from an announced {format_percent(previous.stake)} "
        reasons.append(
            f"{r}'s stake in {v} fell {was}to {format_percent(record.stake)} "
            f"(below {format_percent(rules.threshold)})"
        )
    if not reasons:
        still_related = bool(record.active_contracts) or (
            previous is not None and not previous.active_contracts and record.spend_365d > 0
        )
        if still_related:
            reasons.append(f"{c} and {r} are no longer rivals")
        else:
            reasons.append(f"{c}'s relationship with {v} is no longer active")
    return "resolved: " + "; ".join(reasons)
