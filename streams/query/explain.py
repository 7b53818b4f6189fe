"""Why a conflict is open (or why not): every condition, path, rule and event behind it.

An alert says *what*; a risk lead asks *why* and wants to check the filing or the invoice.
The explanation walks SPEC §3's conditions in order, shows each path with its holdings
and the events that set them (``Provenance``), and evaluates the configured severity rules
clause by clause, naming the one that matched.
"""

from __future__ import annotations

import math
from collections.abc import Set as AbstractSet
from itertools import pairwise
from typing import Any

from streams.engine import Engine, shown_stake
from streams.engine.config import Facts, SeverityRules
from streams.engine.provenance import Evidence, Provenance
from streams.engine.records import format_micros
from streams.engine.relationships import DAY_US
from streams.engine.rules import judged_stake
from streams.query.common import (
    Exposures,
    conflict_figures,
    names,
    require,
    require_client,
    watermark,
)
from streams.query.scope import EVERYTHING, Scope

__all__ = ["explain", "severity_rules"]


def _ev(evidence: Evidence | None) -> dict[str, str] | None:
    return None if evidence is None else evidence.to_dict()


def _term(term: Any) -> str:
    kind = term.kind
    return f"{kind}{term.value:g}" if kind.startswith("stake") else kind


def severity_rules(rules: SeverityRules, facts: Facts) -> dict[str, Any]:
    """Each configured clause with whether it holds; the first match decides (config.py)."""
    matched: dict[str, str] | None = None
    table = []
    for severity, clauses in rules.rules:
        shown = []
        for clause in clauses:
            terms: list[dict[str, Any]] = [
                {"term": _term(t), "holds": t.holds(facts)} for t in clause
            ]
            text = " & ".join(t["term"] for t in terms)
            holds = all(t["holds"] for t in terms)
            if holds and matched is None:
                matched = {"severity": severity, "clause": text}
            shown.append({"clause": text, "holds": holds, "terms": terms})
        table.append({"severity": severity, "clauses": shown})
    table.append(
        {
            "severity": "warning",
            "clauses": [{"clause": "otherwise", "holds": matched is None, "terms": []}],
        }
    )
    return {
        "severity": matched["severity"] if matched else "warning",
        "matched": matched or {"severity": "warning", "clause": "otherwise"},
        "rules": table,
    }


def _holding(
    engine: Engine, provenance: Provenance | None, owner: str, asset: str
) -> dict[str, Any]:
    h = engine.graph.holdings.get((owner, asset))
    held_ev, pending_ev = provenance.stake(owner, asset) if provenance else (None, None)
    if provenance is not None and held_ev is None and pending_ev is None:
        # a snapshot from before the held/pending table: the last event is the best we have
        last = provenance.holding(owner, asset)
        if h is not None and h.pending is not None:
            pending_ev = last
        else:
            held_ev = last
    pending = h is not None and h.pending is not None
    graph = engine.graph
    claimed = graph.claimed(asset)
    return {
        "owner": owner,
        "asset": asset,
        "percent": None if h is None else h.effective,
        "counted": shown_stake(graph.counted_in(asset).get(owner, 0.0)),
        "asset_claimed": shown_stake(claimed),
        "overallocated": claimed > 100,
        "held": None if h is None else h.held,
        "pending": None if h is None else h.pending,
        "status": "announced" if pending else "closed",
        "evidence": _ev(pending_ev if pending else held_ev),
        "held_evidence": _ev(held_ev),
    }


def _contract(
    engine: Engine, provenance: Provenance | None, cid: str, today: int | None
) -> dict[str, Any]:
    c = engine.rel.contracts[cid]
    sensitive = engine.config.sensitive_data_classes
    return {
        "contract_id": cid,
        "active": today is not None and c.active(today),
        "terminated": c.terminated,
        "category": c.category,
        "data_classes": list(c.data_classes),
        "sensitive_data_classes": [dc for dc in c.data_classes if dc in sensitive],
        "annual_value": c.annual_value,
        "ends_on": None if c.ends_on is None else format_micros(c.ends_on * DAY_US)[:10],
        "events": [e.to_dict() for e in provenance.contract(cid)]
        if provenance
        else [{"id": e} for e in c.events],
    }


def _control(
    engine: Engine, rival: str, vendor: str, controlled: AbstractSet[str]
) -> dict[str, Any]:
    """The holdings in the vendor of the rival and of what it controls (> 50 % = control)."""
    graph = engine.graph
    claimed = graph.in_eff.get(vendor, {})
    holders: list[dict[str, Any]] = [
        {"holder": owner, "percent": claimed[owner], "counted": shown_stake(pct)}
        for owner, pct in sorted(graph.counted_in(vendor).items())
        if owner in controlled
    ]
    return {
        "controlled": vendor in controlled,
        "rule": "the rival and the entities it controls hold more than 50 % of the vendor "
        "(counted values: pro rata where the vendor's holdings claim more than 100 %)",
        "holders": holders,
        "total": shown_stake(math.fsum(h["counted"] for h in holders)),
        "vendor_claimed": shown_stake(graph.claimed(vendor)),
    }


def explain(
    engine: Engine,
    provenance: Provenance | None,
    client: str,
    vendor: str,
    rival: str,
    scope: Scope = EVERYTHING,
) -> dict[str, Any]:
    """The full reasoning for (client, vendor, rival) at the watermark, open or not.

    Everything in it is the client's own (its rivalry, its contracts and spend with the
    vendor) or a market fact (the holdings on the paths), so a scope that sees the client
    sees all of it."""
    require_client(engine, client, scope)
    require(engine, vendor, rival, scope=scope)
    config = engine.config
    now = engine.watermark
    today = None if now is None else now // DAY_US
    rel = engine.rel
    exposures = Exposures(engine)
    exposure = exposures(rival)
    figures = conflict_figures(engine, client, vendor, rival, exposures)

    sector = engine.rivals.get(client, {}).get(rival, None)
    are_rivals = rival in engine.rivals.get(client, {})
    rivalry_ev = provenance.rivalry(client, rival) if provenance else None
    active = now is not None and rel.is_active(client, vendor, now)
    pair = rel.pairs.get((client, vendor))
    contract_ids = [] if pair is None else sorted(pair.contracts)
    contracts = [_contract(engine, provenance, cid, today) for cid in contract_ids]
    recent, spend_events = provenance.recent_spend(client, vendor) if provenance else ([], 0)
    if contract_ids:
        how = "an active contract" if active else "no active contract"
    else:
        how = "spend in the trailing window" if active else "no contract and no recent spend"
    stake = judged_stake(exposure.stake(vendor))
    paths = _paths(engine, provenance, figures["paths"])
    stake_evidence = list(
        {
            (e["evidence"]["source"], e["evidence"]["id"]): e["evidence"]
            for p in paths
            for e in p["holdings"]
            if e["evidence"]
        }.values()
    )
    conditions = [
        {
            "condition": "client and rival are declared rivals",
            "holds": are_rivals,
            "detail": f"sector {sector}" if are_rivals and sector else None,
            "evidence": [rivalry_ev.to_dict()] if rivalry_ev else [],
        },
        {
            "condition": "the vendor is neither the client nor the rival",
            "holds": vendor not in (client, rival),
            "detail": None,
            "evidence": [],
        },
        {
            "condition": "the client–vendor relationship is active",
            "holds": active,
            "detail": how,
            "evidence": [e for c in contracts if c["active"] for e in c["events"]]
            or [e.to_dict() for e in recent if not contract_ids],
        },
        {
            "condition": f"effective stake of the rival in the vendor ≥ {config.threshold:g} %",
            "holds": config.meets_threshold(stake),
            "detail": f"{figures['stake']:g} %",
            "evidence": stake_evidence,
        },
    ]
    contracts_now = [c for c in contracts if c["active"]]
    sensitive = any(c["sensitive_data_classes"] for c in contracts_now)
    facts = Facts(
        stake=stake,
        controlled=figures["controlled"],
        sensitive=sensitive,
        pending=figures["pending"],
    )
    exists = all(c["holds"] for c in conditions)
    ids = {client, vendor, rival, *(n for p in paths for n in p["path"])}
    return {
        "dedup_key": figures["dedup_key"],
        "client": client,
        "vendor": vendor,
        "rival": rival,
        "watermark": watermark(engine),
        "conflict": exists,
        "open": figures["open"],
        "severity": figures["severity"],
        "since": _since(engine, figures["dedup_key"]),
        "figures": {k: v for k, v in figures.items() if k not in ("open", "severity")},
        "conditions": conditions,
        "stake": {
            "stake": figures["stake"],
            "held_stake": shown_stake(exposure.held_stake(vendor)),
            "pending": figures["pending"],
            "rule": "sum over simple paths of at most "
            f"{config.max_path_holdings} holdings of the product of the holdings' counted "
            "values, capped at 100 %; announced holdings count in place of held ones; where "
            "an asset's holdings claim more than 100 %, each counts pro rata",
            "paths": paths,
        },
        "control": _control(engine, rival, vendor, exposure.controlled),
        "relationship": {
            "active": active,
            "contracts": contracts,
            "data_classes": figures["data_classes"],
            "sensitive_data_classes": sorted(
                {dc for c in contracts_now for dc in c["sensitive_data_classes"]}
            ),
            "spend_365d": figures["spend_365d"],
            "spend_events": spend_events,
            "recent_spend": [e.to_dict() for e in recent],
        },
        "rules": {
            "facts": {
                "stake": stake,
                "controlled": facts.controlled,
                "sensitive": facts.sensitive,
                "pending": facts.pending,
            },
            **severity_rules(config.severity, facts),
            "applies": exists,
        },
        "names": names(engine, ids),
    }


def _paths(
    engine: Engine, provenance: Provenance | None, rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Each path with its holdings, their product and the events that set them."""
    paths = []
    for row in rows:
        nodes = row["path"]
        edges = [_holding(engine, provenance, a, b) for a, b in pairwise(nodes)]
        paths.append(
            {
                **row,
                "product": " × ".join(f"{e['counted']:g} %" for e in edges),
                "pending": any(e["status"] == "announced" for e in edges),
                "holdings": edges,
            }
        )
    return paths


def _since(engine: Engine, key: str) -> dict[str, str] | None:
    c = engine.open.get(key)
    return None if c is None else {"event_id": c.since_event, "time": c.since_time}
