"""What an entity is called, who owns it, what it owns: stakes with their paths (SPEC §2).

``holdings`` is the engine's own exposure of the entity; ``owners`` is the engine's walk
backwards from the asset (`OwnershipGraph.paths_into`), which gives each path the bits the
forward walk gives it, so ``owners(V)[R]`` equals ``holdings(R)[V]``. Both show what an
asset's holdings claim in all and what each counts (pro rata where over-allocated).
"""

from __future__ import annotations

import math
from itertools import pairwise
from typing import Any

from streams.engine import Engine, shown_stake
from streams.engine.ownership import OwnershipGraph
from streams.query.common import names, require, watermark
from streams.query.scope import EVERYTHING, Scope

__all__ = ["entity", "holdings", "owners"]

Path = tuple[str, ...]


def _direct(graph: OwnershipGraph, owner: str, asset: str) -> dict[str, Any] | None:
    """The direct holding, if any: the effective percent as claimed and as counted (pro
    rata where the asset is over-allocated), and the held and pending values."""
    h = graph.holdings.get((owner, asset))
    if h is None or h.effective is None:
        return None
    counted = graph.counted_in(asset).get(owner, 0.0)
    return {
        "percent": h.effective,
        "counted": shown_stake(counted),
        "held": h.held,
        "pending": h.pending,
    }


def _allocation(graph: OwnershipGraph, asset: str) -> dict[str, Any]:
    """What the holdings in `asset` claim in all, and whether they count pro rata."""
    claimed, claimed_held = graph.claimed(asset), graph.claimed(asset, held=True)
    return {
        "claimed": shown_stake(claimed),
        "claimed_held": shown_stake(claimed_held),
        "overallocated": claimed > 100 or claimed_held > 100,
    }


def _path_pending(graph: OwnershipGraph, path: Path) -> bool:
    """True when an announced (not yet closed) holding sits on the path."""
    hs = graph.holdings
    return any(
        (h := hs.get((a, b))) is not None and h.pending is not None for a, b in pairwise(path)
    )


def _shown(paths: list[tuple[float, Path]], graph: OwnershipGraph) -> list[dict[str, Any]]:
    rows = sorted(((shown_stake(s), p) for s, p in paths), key=lambda sp: (-sp[0], sp[1]))
    return [{"path": list(p), "stake": s, "pending": _path_pending(graph, p)} for s, p in rows]


def owners(engine: Engine, entity: str, scope: Scope = EVERYTHING) -> dict[str, Any]:
    """Effective owners of `entity`, largest stake first, each with its paths (market
    facts: any scope sees them, for an entity it may know of)."""
    require(engine, entity, scope=scope)
    graph = engine.graph
    rows: list[dict[str, Any]] = []
    for owner, paths in graph.paths_into(entity).items():
        stake = min(100.0, math.fsum(s for s, _ in paths))
        rows.append(
            {
                "owner": owner,
                "stake": shown_stake(stake),
                "controls": entity in graph.controlled_by(owner),
                "direct": _direct(graph, owner, entity),
                "paths": _shown(paths, graph),
            }
        )
    rows.sort(key=lambda r: (-r["stake"], r["owner"]))
    ids = {entity, *(n for r in rows for p in r["paths"] for n in p["path"])}
    return {
        "entity": entity,
        "watermark": watermark(engine),
        "allocation": _allocation(graph, entity),
        "owners": rows,
        "names": names(engine, ids),
    }


def holdings(engine: Engine, entity: str, scope: Scope = EVERYTHING) -> dict[str, Any]:
    """Everything `entity` reaches, largest effective stake first, each with its paths."""
    require(engine, entity, scope=scope)
    graph = engine.graph
    exposure = engine.exposure_of(entity)
    rows: list[dict[str, Any]] = []
    # control through a long chain of majorities can leave no path above the floor
    reached = exposure.paths.keys() | (exposure.controlled - {entity})
    for asset in reached:
        paths = exposure.paths.get(asset, [])
        rows.append(
            {
                "asset": asset,
                "stake": shown_stake(exposure.stake(asset)),
                "held_stake": shown_stake(exposure.held_stake(asset)),
                "controlled": asset in exposure.controlled,
                "direct": _direct(graph, entity, asset),
                "paths": _shown(paths, graph),
            }
        )
    rows.sort(key=lambda r: (-r["stake"], r["asset"]))
    ids = {entity, *(n for r in rows for p in r["paths"] for n in p["path"])}
    return {
        "entity": entity,
        "watermark": watermark(engine),
        "holdings": rows,
        "names": names(engine, ids),
    }


def entity(engine: Engine, entity: str, scope: Scope = EVERYTHING) -> dict[str, Any]:
    """The entity's registration: display name, aliases and registry identifiers (SPEC v2
    §1); `registered` is false for an entity events name but none registers. An entity a
    scope knows only through another client's events answers as an unknown one."""
    require(engine, entity, scope=scope)
    known = engine.entities.get(entity)
    return {
        "entity": entity,
        "watermark": watermark(engine),
        "registered": known is not None,
        "name": None if known is None else known[0],
        "aliases": [] if known is None else list(known[1:]),
        "identifiers": [
            {"scheme": scheme, "id": value} for scheme, value in engine.identifiers.get(entity, ())
        ],
    }
