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

__all__ = [
    "SEVERITY_RANK",
    "SLUG",
    "Exposures",
    "NotFound",
    "conflict_figures",
    "is_known",
    "iso_micros",
    "names",
    "require",
    "watermark",
]

SLUG = re.compile(r"^[a-z0-9][a-z0-9._-]{0,127}$")
SEVERITY_RANK = {"critical": 0, "high": 1, "warning": 2}


class NotFound(LookupError):
    """Something the state has never seen (an entity, a category); the message says what."""


def iso_micros(t: int | None) -> str | None:
    """RFC 3339 (UTC, ``Z``) of an engine time in microseconds, as alert records print it."""
    return None if t is None else format_micros(t)


def watermark(engine: Engine) -> str | None:
    return iso_micros(engine.watermark)


def is_known(engine: Engine, entity: str) -> bool:
    """True when any applied event named the entity (cheap indexes first, then a scan)."""
    graph, rel = engine.graph, engine.rel
    if (
        entity in engine.entities
        or entity in engine.rivals
        or entity in graph.out_eff
        or entity in graph.in_eff
        or entity in graph.out_held
        or entity in rel.by_vendor
    ):
        return True
    return any(client == entity for client, _ in rel.pairs) or any(
        entity in pair for pair in graph.holdings
    )


def require(engine: Engine, *entities: str) -> None:
    for entity in entities:
        if not is_known(engine, entity):
            raise NotFound(f"unknown entity {entity!r}: no applied event names it")


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
