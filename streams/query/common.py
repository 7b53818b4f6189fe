"""What every query shares: entity look-ups, display names, and one conflict's figures.

Queries read the engine and never change it, so the API can answer from the worker's live
state between two batches, and ``stakewatch explain`` from a file, with the same code.
Figures are computed exactly as the engine computes an alert record's (docs/decisions.md),
so a query and the alert it explains never disagree.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from streams.engine import Engine
from streams.engine.ownership import Exposure
from streams.engine.records import format_micros
from streams.query.scope import EVERYTHING, Scope

__all__ = [
    "SLUG",
    "Exposures",
    "NotFound",
    "conflict_figures",
    "is_known",
    "iso_micros",
    "names",
    "require",
    "require_client",
    "watermark",
]

SLUG = re.compile(r"^[a-z0-9][a-z0-9._-]{0,127}$")


class NotFound(LookupError):
    """Something the state has never seen (an entity, a category); the message says what."""


def iso_micros(t: int | None) -> str | None:
    """RFC 3339 (UTC, ``Z``) of an engine time in microseconds, as alert records print it."""
    return None if t is None else format_micros(t)


def watermark(engine: Engine) -> str | None:
    return iso_micros(engine.watermark)


def is_known(engine: Engine, entity: str, scope: Scope = EVERYTHING) -> bool:
    """True when an applied event the scope may see named the entity.

    Market facts (the registry, the ownership graph) are seen by every scope; a rivalry or
    a relationship only by a scope holding one of its clients."""
    graph, rel = engine.graph, engine.rel
    if (
        entity in engine.entities
        or entity in graph.out_eff
        or entity in graph.in_eff
        or entity in graph.out_held
    ):
        return True
    clients = scope.clients
    if clients is None:
        if entity in engine.rivals or entity in rel.by_vendor:
            return True
        return any(client == entity for client, _ in rel.pairs) or any(
            entity in pair for pair in graph.holdings
        )
    rivals = engine.rivals.get(entity)
    if rivals is not None and (entity in clients or not clients.isdisjoint(rivals)):
        return True
    if any((client, entity) in rel.pairs for client in clients):
        return True
    if entity in clients and any(client == entity for client, _ in rel.pairs):
        return True
    return any(entity in pair for pair in graph.holdings)


def _unknown(entity: str) -> NotFound:
    return NotFound(f"unknown entity {entity!r}: no applied event names it")


def require(engine: Engine, *entities: str, scope: Scope = EVERYTHING) -> None:
    for entity in entities:
        if not is_known(engine, entity, scope):
            raise _unknown(entity)


def require_client(engine: Engine, client: str, scope: Scope = EVERYTHING) -> None:
    """`client` must be one the scope sees; another client's id is answered exactly as an
    id nobody named (same status, same message), so the answer leaks nothing."""
    if not scope.sees(client):
        raise _unknown(client)
    require(engine, client, scope=scope)


def names(engine: Engine, ids: Iterable[str]) -> dict[str, str]:
    """Display names of the registered entities among `ids` (others are shown by id)."""
    out = {}
    for entity in sorted(set(ids)):
        known = engine.entities.get(entity)
        if known is not None:
            out[entity] = known[0]
    return out


class Exposures:
    """Per-query cache of rivals' exposures: many conflicts share one rival."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._cache: dict[str, Exposure] = {}

    def __call__(self, root: str) -> Exposure:
        exposure = self._cache.get(root)
        if exposure is None:
            exposure = self._cache[root] = self.engine.exposure_of(root)
        return exposure


def conflict_figures(
    engine: Engine, client: str, vendor: str, rival: str, exposures: Exposures | None = None
) -> dict[str, Any]:
    """The (C, V, R) figures at the watermark, in the alert record's shape and rounding.

    ``open``/``severity`` say whether the engine holds the conflict open (and at which
    severity); the figures are given either way, so a what-if can show a stake falling
    below the threshold. The figures themselves are `Engine.figures`, as in alert records.
    """
    f = engine.figures(client, vendor, rival, (exposures or Exposures(engine))(rival))
    key = f"{client}|{vendor}|{rival}"
    state = engine.open.get(key)
    return {
        "dedup_key": key,
        "client": client,
        "vendor": vendor,
        "rival": rival,
        "open": state is not None,
        "severity": None if state is None else state.severity,
        **f.to_dict(),
    }
