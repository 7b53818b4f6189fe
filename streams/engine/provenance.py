"""Which events stand behind each figure: the evidence side-table for explanations.

The engine keeps figures (stakes, contracts, spend); an explanation must also say which
events set them — ids, sources, times — so a risk lead can check the filing or the
invoice. Kept beside the engine rather than inside it: the engine's hot path stays lean,
and only adapters that explain (the worker, ``stakewatch explain``) pay for it. Pure, fed
with the events the engine applied, in the same order, and snapshotted with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from streams.engine.records import by_value, format_micros
from streams.events import Event
from streams.events.fast import Flat, flatten

__all__ = ["Evidence", "Provenance", "SpendTrail"]

_SPEND_KEPT = 5  # most recent spend events remembered per client–vendor pair


@dataclass(frozen=True, slots=True)
class Evidence:
    """One event, as an explanation cites it. ``time`` is kept as microseconds since the
    epoch and written out only when cited."""

    def __reduce__(self) -> tuple[type[Evidence], tuple[Any, ...]]:
        return by_value(self)

    id: str
    source: str
    time: int
    type: str

    def to_dict(self) -> dict[str, str]:
        return {
            "id": self.id,
            "source": self.source,
            "time": format_micros(self.time),
            "type": self.type,
        }


class SpendTrail:
    """A client–vendor pair's spend evidence: how many spend events, and the most recent
    ones as (id, source, µs), newest last. One object per pair, so a spend costs one
    lookup; the list is trimmed in halves (at twice the kept length), not at every spend."""

    __slots__ = ("count", "recent")

    def __init__(self, count: int = 0, recent: list[tuple[str, str, int]] | None = None) -> None:
        self.count = count
        self.recent: list[tuple[str, str, int]] = [] if recent is None else recent

    def __reduce__(self) -> tuple[type[SpendTrail], tuple[Any, ...]]:
        return SpendTrail, (self.count, self.recent)

    def add(self, eid: str, source: str, t: int) -> None:
        self.count += 1
        recent = self.recent
        recent.append((eid, source, t))
        if len(recent) > 2 * _SPEND_KEPT:
            del recent[:-_SPEND_KEPT]

    def last(self) -> list[tuple[str, str, int]]:
        return self.recent[-_SPEND_KEPT:]


class Provenance:
    """Last events per holding and rivalry, every event per contract, recent spend per pair.

    Fed flat events (``streams/events/fast.py``) on the worker's hot path: a spend, most of
    any stream, costs a lookup and a list append; ``Evidence`` objects are made when cited.
    """

    def __init__(self) -> None:
        self.holdings: dict[tuple[str, str], Evidence] = {}  # (owner, asset) -> last event
        # (owner, asset) -> (event that set the held value, event that set the pending one):
        # a holding's figure comes from one or the other, so an explanation cites that one
        self.stakes: dict[tuple[str, str], tuple[Evidence | None, Evidence | None]] = {}
        self.contracts: dict[str, list[Evidence]] = {}  # contract_id -> sign, amends, end
        self.rivalries: dict[tuple[str, str], Evidence] = {}  # sorted pair -> last event
        self.spend: dict[tuple[str, str], SpendTrail] = {}  # (client, vendor) -> its trail

    def observe(self, event: Event) -> None:
        """Record an event the engine applied (call only for applied events)."""
        self.observe_flat(flatten(event))

    def observe_flat(self, flat: Flat) -> None:
        """``observe`` for the flat form of the event."""
        kind, source, eid, t, d = flat
        if kind == "spend.recorded":
            pair = (d[0], d[1])
            trail = self.spend.get(pair)
            if trail is None:
                trail = self.spend[pair] = SpendTrail()
            trail.add(eid, source, t)
            return
        ev = Evidence(eid, source, t, kind)
        if kind == "ownership.stake":
            owner, asset, percent, status = d
            pair = (owner, asset)
            self.holdings[pair] = ev
            held, pending = self.stakes.get(pair, (None, None))
            if status == "announced":
                pending = ev
            elif status == "closed":
                held, pending = (ev if percent > 0 else None), None
            else:  # cancelled
                pending = None
            if held is None and pending is None:
                self.stakes.pop(pair, None)
            else:
                self.stakes[pair] = (held, pending)
        elif kind.startswith("contract."):
            self.contracts.setdefault(d[0], []).append(ev)
        elif kind.startswith("rivalry."):
            self.rivalries[(d[0], d[1]) if d[0] <= d[1] else (d[1], d[0])] = ev

    def holding(self, owner: str, asset: str) -> Evidence | None:
        return self.holdings.get((owner, asset))

    def stake(self, owner: str, asset: str) -> tuple[Evidence | None, Evidence | None]:
        """The events behind a holding's held and pending values (None where unset)."""
        return self.stakes.get((owner, asset), (None, None))

    def contract(self, contract_id: str) -> list[Evidence]:
        return list(self.contracts.get(contract_id, ()))

    def rivalry(self, a: str, b: str) -> Evidence | None:
        return self.rivalries.get((a, b) if a <= b else (b, a))

    def recent_spend(self, client: str, vendor: str) -> tuple[list[Evidence], int]:
        """The last few spend events of a pair and how many there were in all."""
        trail = self.spend.get((client, vendor))
        if trail is None:
            return [], 0
        return [Evidence(i, s, t, "spend.recorded") for i, s, t in trail.last()], trail.count
