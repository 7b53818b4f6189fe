"""Which events stand behind each figure: the evidence side-table for explanations.

The engine keeps figures (stakes, contracts, spend); an explanation must also say which
events set them — ids, sources, times — so a risk lead can check the filing or the
invoice. Kept beside the engine rather than inside it: the engine's hot path stays lean,
and only adapters that explain (the worker, ``stakewatch explain``) pay for it. Pure, fed
with the events the engine applied, in the same order, and snapshotted with it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from streams.engine.records import format_time
from streams.events import Event

__all__ = ["Evidence", "Provenance"]

_SPEND_KEPT = 5  # most recent spend events remembered per client–vendor pair


@dataclass(frozen=True, slots=True)
class Evidence:
    """One event, as an explanation cites it."""

    id: str
    source: str
    time: str
    type: str

    def to_dict(self) -> dict[str, str]:
        return {"id": self.id, "source": self.source, "time": self.time, "type": self.type}


class Provenance:
    """Last events per holding and rivalry, every event per contract, recent spend per pair."""

    def __init__(self) -> None:
        self.holdings: dict[tuple[str, str], Evidence] = {}  # (owner, asset) -> last event
        # (owner, asset) -> (event that set the held value, event that set the pending one):
        # a holding's figure comes from one or the other, so an explanation cites that one
        self.stakes: dict[tuple[str, str], tuple[Evidence | None, Evidence | None]] = {}
        self.contracts: dict[str, list[Evidence]] = {}  # contract_id -> sign, amends, end
        self.rivalries: dict[tuple[str, str], Evidence] = {}  # sorted pair -> last event
        self.spend: dict[tuple[str, str], deque[Evidence]] = {}  # (client, vendor) -> recent
        self.spend_events: dict[tuple[str, str], int] = {}

    def observe(self, event: Event) -> None:
        """Record an event the engine applied (call only for applied events)."""
        ev = Evidence(event.id, event.source, format_time(event.time), event.type)
        d = event.data
        kind = event.type
        if kind == "spend.recorded":
            pair = (d.client, d.vendor)
            recent = self.spend.get(pair)
            if recent is None:
                recent = self.spend[pair] = deque(maxlen=_SPEND_KEPT)
            recent.append(ev)
            self.spend_events[pair] = self.spend_events.get(pair, 0) + 1
        elif kind == "ownership.stake":
            pair = (d.owner, d.asset)
            self.holdings[pair] = ev
            held, pending = self.stakes.get(pair, (None, None))
            if d.status == "announced":
                pending = ev
            elif d.status == "closed":
                held, pending = (ev if d.percent > 0 else None), None
            else:  # cancelled
                pending = None
            if held is None and pending is None:
                self.stakes.pop(pair, None)
            else:
                self.stakes[pair] = (held, pending)
        elif kind.startswith("contract."):
            self.contracts.setdefault(d.contract_id, []).append(ev)
        elif kind.startswith("rivalry."):
            self.rivalries[tuple(sorted((d.a, d.b)))] = ev

    def __setstate__(self, state: dict) -> None:
        """Snapshots written before a table existed restore with that table empty."""
        self.__init__()  # type: ignore[misc]
        self.__dict__.update(state)

    def holding(self, owner: str, asset: str) -> Evidence | None:
        return self.holdings.get((owner, asset))

    def stake(self, owner: str, asset: str) -> tuple[Evidence | None, Evidence | None]:
        """The events behind a holding's held and pending values (None where unset)."""
        return self.stakes.get((owner, asset), (None, None))

    def contract(self, contract_id: str) -> list[Evidence]:
        return list(self.contracts.get(contract_id, ()))

    def rivalry(self, a: str, b: str) -> Evidence | None:
        return self.rivalries.get(tuple(sorted((a, b))))

    def recent_spend(self, client: str, vendor: str) -> tuple[list[Evidence], int]:
        """The last few spend events of a pair and how many there were in all."""
        pair = (client, vendor)
        return list(self.spend.get(pair, ())), self.spend_events.get(pair, 0)
