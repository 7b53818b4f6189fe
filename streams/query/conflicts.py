"""Open conflicts, and one client's exposure through every vendor it depends on."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from streams.engine import SEVERITY_RANK, AlertRecord, Engine, meets_threshold, shown_stake
from streams.query.common import (
    Exposures,
    conflict_figures,
    names,
    require,
    require_client,
    watermark,
)
from streams.query.scope import EVERYTHING, Scope

__all__ = ["client_exposure", "open_conflicts"]


def open_conflicts(
    engine: Engine,
    latest: Mapping[str, AlertRecord] | None = None,
    *,
    client: str | None = None,
    vendor: str | None = None,
    rival: str | None = None,
    severity: str | None = None,
    limit: int = 1000,
    scope: Scope = EVERYTHING,
) -> dict[str, Any]:
    """Open conflicts, most severe first, in the alert record's shape.

    Figures are at the watermark (a holding that closed at the announced value changes
    ``pending`` without an alert); ``event_id``/``event_time`` name the event of the
    conflict's last alert record (`latest`), ``since_*`` the one that opened it. Only
    conflicts of clients the `scope` sees are listed.
    """
    if client is not None:
        require_client(engine, client, scope)
    require(engine, *(e for e in (vendor, rival) if e is not None), scope=scope)
    chosen = [
        (key, c)
        for key, c in engine.open.items()
        if scope.sees(c.client)
        and (client is None or c.client == client)
        and (vendor is None or c.vendor == vendor)
        and (rival is None or c.rival == rival)
        and (severity is None or c.severity == severity)
    ]
    chosen.sort(key=lambda kc: (SEVERITY_RANK[kc[1].severity], kc[0]))
    exposures = Exposures(engine)
    items = []
    ids: set[str] = set()
    for key, c in chosen[:limit]:
        figures = conflict_figures(engine, c.client, c.vendor, c.rival, exposures)
        del figures["open"]
        record = latest.get(key) if latest is not None else None
        items.append(
            {
                **figures,
                "status": "firing",
                "event_id": record.event_id if record else c.since_event,
                "event_time": record.event_time if record else c.since_time,
                "since_event": c.since_event,
                "since_time": c.since_time,
            }
        )
        ids.update((c.client, c.vendor, c.rival))
        ids.update(node for p in figures["paths"] for node in p["path"])
    return {
        "watermark": watermark(engine),
        "total": len(chosen),
        "conflicts": items,
        "names": names(engine, ids),
    }


def client_exposure(engine: Engine, client: str, scope: Scope = EVERYTHING) -> dict[str, Any]:
    """Every vendor the client has dealt with, and each rival's reach into it (only the
    client's own relationships: never another client's)."""
    require_client(engine, client, scope)
    now = engine.watermark
    rel = engine.rel
    threshold = engine.config.threshold
    sensitive = engine.config.sensitive_data_classes
    rivals = engine.rivals.get(client, {})
    exposures = Exposures(engine)
    vendors = sorted(v for c, v in rel.pairs if c == client)
    rows = []
    for vendor in vendors:
        pair = rel.pairs[(client, vendor)]
        contracts = [] if now is None else rel.active_contracts(client, vendor, now)
        classes = sorted({dc for c in contracts for dc in c.data_classes})
        reach = []
        for rival in sorted(rivals):
            if rival == vendor:
                continue
            exposure = exposures(rival)
            stake = exposure.stake(vendor)
            if stake <= 0 and vendor not in exposure.controlled:
                continue
            figures = conflict_figures(engine, client, vendor, rival, exposures)
            reach.append(
                {
                    "rival": rival,
                    "sector": rivals[rival],
                    "stake": figures["stake"],
                    "held_stake": shown_stake(exposure.held_stake(vendor)),
                    "controlled": figures["controlled"],
                    "pending": figures["pending"],
                    "at_or_above_threshold": meets_threshold(stake, threshold),
                    "conflict_open": figures["open"],
                    "severity": figures["severity"],
                    "paths": figures["paths"],
                }
            )
        rows.append(
            {
                "vendor": vendor,
                "active": now is not None and rel.is_active(client, vendor, now),
                "contracts_ever": len(pair.contracts),
                "active_contracts": [c.contract_id for c in contracts],
                "categories": sorted({c.category for c in contracts}),
                "data_classes": classes,
                "sensitive_data_classes": [dc for dc in classes if dc in sensitive],
                "spend_365d": engine.spend_365d(client, vendor),
                "rivals": reach,
            }
        )
    ids = {client, *vendors, *rivals}
    return {
        "client": client,
        "watermark": watermark(engine),
        "threshold": threshold,
        "rivals": [{"rival": r, "sector": rivals[r]} for r in sorted(rivals)],
        "vendors": rows,
        "names": names(engine, ids),
    }
