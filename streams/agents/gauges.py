"""The worker's state on its gauges: open conflicts ten times a second, the rest once.

Scrapes come seconds apart, so counting open conflicts after every batch (thousands a
second while catching up, each a pass over every open conflict) bought nothing.

Figures move without a transition (spend ages, an announced stake closes: no alert record),
so the dashboards get each open conflict's headline figures at the watermark, as
/v1/conflicts shows them, with the table sizes and the over-allocated assets.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Sequence

from streams.agents.clock import Clock
from streams.engine import AlertRecord, Engine
from streams.metrics import Metrics

__all__ = ["StateGauges"]


class StateGauges:
    def __init__(self, metrics: Metrics, clock: Clock) -> None:
        self.metrics = metrics
        self.clock = clock
        self._last_export = 0.0
        self._last_count = 0.0

    def export(self, engine: Engine, open_records: Callable[[], Sequence[AlertRecord]]) -> None:
        """``open_records``: the latest record of each open conflict this worker publishes
        for (asked only when due)."""
        now = self.clock.monotonic()
        if now - self._last_count < 0.1:
            return
        self._last_count = now
        m = self.metrics
        mine = open_records()
        m.set_open_conflicts(Counter(r.severity for r in mine))
        if now - self._last_export < 1.0:
            return
        self._last_export = now
        refreshed = []
        for r in mine:
            stake, controlled, pending, spend = engine.headline(r.client, r.vendor, r.rival)
            refreshed.append(
                dataclasses.replace(
                    r, stake=stake, controlled=controlled, pending=pending, spend_365d=spend
                )
            )
        m.set_conflicts(refreshed)
        m.set_table_sizes(
            {
                "holdings": len(engine.graph.holdings),
                "contracts": len(engine.rel.contracts),
                "open_conflicts": len(engine.open),
            }
        )
        m.set_overallocated(len(engine.graph.overallocated))
