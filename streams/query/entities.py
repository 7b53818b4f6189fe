"""Who owns an entity, and what it owns — effective stakes with their paths (SPEC §2).

``holdings`` is the engine's own exposure of the entity. ``owners`` walks the graph
backwards from the asset, then recomputes each path forwards in the engine's order
(docs/decisions.md, Arithmetic), so ``owners(V)[R]`` has the same bits as ``holdings(R)[V]``.
"""

from __future__ import annotations

import math
from itertools import pairwise
from typing import Any

from streams.engine import Engine
from streams.engine.ownership import OwnershipGraph
from streams.query.common import names, require, watermark
from streams.query.scope import EVERYTHING, Scope

__all__ = ["holdings", "owners"]

Path = tuple[str, ...]


def _direct(graph: OwnershipGraph, owner: str, asset: str) -> dict[str, Any] | None:
    """The direct holding, if any: the effective percent, and the held and pending values."""
    h = graph.holdings.get((owner, asset))
    if h is None or h.effective is None:
        return None
    return {"percent": h.effective, "held": h.held, "pending": h.pending}


def _path_pending(graph: OwnershipGraph, path: Path) -> bool:
    """True when an announced (not yet closed) holding sits on the path."""
    hs = graph.holdings
    return any(
        (h := hs.get((a, b))) is not None and h.pending is not None for a, b in pairwise(path)
    )


def _forward_stake(graph: OwnershipGraph, path: Path) -> float | None:
    """The path's stake as the engine computes it, or None if the engine prunes it."""
    out, floor = graph.out_eff, graph.path_floor
    stake: float | None = None
    for a, b in pairwise(path):
        pct = out.get(a, {}).get(b)
        if pct is None or pct <= 0:
            return None
        stake = pct if stake is None else stake * pct / 100
        if stake < floor:
            return None
    return stake


def _owner_paths(graph: OwnershipGraph, asset: str) -> dict[str, list[tuple[float, Path]]]:
    """Every simple path R → … → asset above the floor, grouped by R."""
    inbound = graph.in_eff
    # suffix products are at least the whole path's, so pruning on them (with a little
    # slack for rounding) never drops a path the forward walk keeps
    floor = graph.path_floor * (1 - 1e-9)
    found: dict[str, list[tuple[float, Path]]] = {}
    reversed_path = [asset]
    on_path = {asset}

    def walk(node: str, suffix: float | None) -> None:
        for owner, pct in inbound.get(node, {}).items():
            if owner in on_path or pct <= 0:
                continue
            s = pct if suffix is None else suffix * pct / 100
            if s < floor:
                continue
            reversed_path.append(owner)
            on_path.add(owner)
            path = tuple(reversed(reversed_path))
            stake = _forward_stake(graph, path)
            if stake is not None:
                found.setdefault(owner, []).append((stake, path))
            walk(owner, s)
            on_path.discard(owner)
            reversed_path.pop()

    walk(asset, None)
    return found


def _shown(paths: list[tuple[float, Path]], graph: OwnershipGraph) -> list[dict[str, Any]]:
    rows = sorted(((round(s, 6), p) for s, p in paths), key=lambda sp: (-sp[0], sp[1]))
    return [{"path": list(p), "stake": s, "pending": _path_pending(graph, p)} for s, p in rows]


def owners(engine: Engine, entity: str, scope: Scope = EVERYTHING) -> dict[str, Any]:
    """Effective owners of `entity`, largest stake first, each with its paths (market
    facts: any scope sees them, for an entity it may know of)."""
    require(engine, entity, scope=scope)
    graph = engine.graph
    rows = []
    for owner, paths in _owner_paths(graph, entity).items():
        stake = min(100.0, math.fsum(s for s, _ in paths))
        rows.append(
            {
                "owner": owner,
                "stake": round(stake, 6),
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
        "owners": rows,
        "names": names(engine, ids),
    }


def holdings(engine: Engine, entity: str, scope: Scope = EVERYTHING) -> dict[str, Any]:
    """Everything `entity` reaches, largest effective stake first, each with its paths."""
    require(engine, entity, scope=scope)
    graph = engine.graph
    exposure = engine.exposure_of(entity)
    rows = []
    # control through a long chain of majorities can leave no path above the floor
    reached = exposure.paths.keys() | (exposure.controlled - {entity})
    for asset in reached:
        paths = exposure.paths.get(asset, [])
        rows.append(
            {
                "asset": asset,
                "stake": round(exposure.stake(asset), 6),
                "held_stake": round(exposure.held_stake(asset), 6),
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
