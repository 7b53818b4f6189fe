"""Neutral vendors: where a client could move work so that no rival sits behind it.

"Seen in a category" means some contract (of anyone) signed or amended into that category;
a vendor is neutral for the client when no rival of the client reaches it with an effective
stake at or above the conflict threshold. Stakes below the threshold are still listed: a
rival at 8 % is a fact a risk lead wants before moving the work.
"""

from __future__ import annotations

from typing import Any

from streams.engine import Engine, meets_threshold, shown_stake
from streams.query.common import Exposures, NotFound, names, require_client, watermark
from streams.query.scope import EVERYTHING, Scope

__all__ = ["alternatives"]


def alternatives(
    engine: Engine, client: str, category: str, scope: Scope = EVERYTHING
) -> dict[str, Any]:
    """Neutral vendors of `category` for `client` first (most clients first), then the rest."""
    require_client(engine, client, scope)
    vendors = _vendors(engine, category, scope)
    if not vendors:
        raise NotFound(f"unknown category {category!r}: no contract was signed in it")
    now = engine.watermark
    rel = engine.rel
    threshold = engine.config.threshold
    rivals = engine.rivals.get(client, {})
    exposures = Exposures(engine)
    neutral: list[dict[str, Any]] = []
    excluded: list[dict[str, Any]] = []
    for vendor in sorted(vendors - {client}):
        stakes = []
        for rival in sorted(rivals):
            exposure = exposures(rival)
            stake = exposure.stake(vendor)
            if stake > 0 or vendor in exposure.controlled:
                stakes.append(
                    {
                        "rival": rival,
                        "stake": shown_stake(stake),
                        "controlled": vendor in exposure.controlled,
                        "at_or_above_threshold": meets_threshold(stake, threshold),
                    }
                )
        clients = sorted(
            c
            for c in rel.clients_of(vendor)
            if scope.sees(c) and now is not None and rel.is_active(c, vendor, now)
        )
        row: dict[str, Any] = {
            "vendor": vendor,
            "clients": len(clients),
            "already_used": client in clients,
            "rival_stakes": stakes,
            "owners": [
                {"owner": o, "percent": p}
                for o, p in sorted(engine.graph.in_eff.get(vendor, {}).items())
            ],
        }
        if any(s["at_or_above_threshold"] for s in stakes):
            excluded.append(row)
        else:
            neutral.append(row)
    neutral.sort(key=lambda r: (-r["clients"], r["vendor"]))
    ids = {client, *(r["vendor"] for r in neutral + excluded)}
    return {
        "client": client,
        "category": category,
        "watermark": watermark(engine),
        "threshold": threshold,
        "alternatives": neutral,
        "excluded": excluded,
        "names": names(engine, ids),
    }


def _vendors(engine: Engine, category: str, scope: Scope) -> set[str] | None:
    """Vendors seen in `category`: in anyone's contracts, or in the scope's clients' ones
    (their current category: a scoped caller does not see what an amendment replaced)."""
    if scope.clients is None:
        return engine.rel.by_category.get(category)
    return {
        c.vendor
        for c in engine.rel.contracts.values()
        if c.category == category and c.client in scope.clients
    }
