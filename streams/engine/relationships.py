"""Who depends on which vendor: contracts, trailing-year spend, and when a pair is active.

Time-based lapses (a contract's `ends_on`, the last spend of a never-contracted pair ageing
out) come off priority queues as the watermark moves, so no event ever scans every pair.
"""

from __future__ import annotations

import heapq
import math
from array import array
from bisect import bisect_right
from dataclasses import dataclass, field

__all__ = ["Contract", "Pair", "Relationships"]

DAY_US = 86_400_000_000


@dataclass(slots=True)
class Contract:
    contract_id: str
    client: str
    vendor: str
    category: str
    data_classes: tuple[str, ...]
    annual_value: float | None
    ends_on: int | None  # days since the epoch
    signed_event: str
    terminated: bool = False
    events: list[str] = field(default_factory=list)

    def active(self, today: int) -> bool:
        return not self.terminated and (self.ends_on is None or self.ends_on >= today)


@dataclass(slots=True)
class Pair:
    """One client–vendor pair: its contracts (ever signed) and its spend, sorted by time."""

    contracts: list[str] = field(default_factory=list)
    times: array = field(default_factory=lambda: array("q"))
    amounts: array = field(default_factory=lambda: array("d"))
    expiry_scheduled: bool = False


class Relationships:
    """Contracts and spend by (client, vendor), with the lapse queues."""

    def __init__(self, window_days: int = 365) -> None:
        self.window_us = window_days * DAY_US
        self.contracts: dict[str, Contract] = {}
        self.pairs: dict[tuple[str, str], Pair] = {}
        self.by_vendor: dict[str, set[str]] = {}
        self.by_category: dict[str, set[str]] = {}
        self._ends: list[tuple[int, str]] = []  # (ends_on day, contract_id), lazily invalidated
        self._spend_expiry: list[tuple[int, str, str]] = []  # (time it ages out, client, vendor)

    def pair(self, client: str, vendor: str) -> Pair:
        p = self.pairs.get((client, vendor))
        if p is None:
            p = self.pairs[(client, vendor)] = Pair()
            self.by_vendor.setdefault(vendor, set()).add(client)
        return p

    # -- updates -----------------------------------------------------------------------

    def sign(self, c: Contract) -> None:
        self.contracts[c.contract_id] = c
        self.pair(c.client, c.vendor).contracts.append(c.contract_id)
        self.by_category.setdefault(c.category, set()).add(c.vendor)
        if c.ends_on is not None:
            heapq.heappush(self._ends, (c.ends_on, c.contract_id))

    def amend(self, c: Contract, changes: dict) -> None:
        for key, value in changes.items():
            setattr(c, key, value)
        if "category" in changes:
            self.by_category.setdefault(c.category, set()).add(c.vendor)
        if changes.get("ends_on") is not None:
            heapq.heappush(self._ends, (c.ends_on, c.contract_id))

    def add_spend(self, client: str, vendor: str, time: int, amount: float, now: int) -> bool:
        """Record spend; True when it is the only in-window spend of a never-contracted pair."""
        p = self.pair(client, vendor)
        cutoff = now - self.window_us
        if p.times and p.times[0] <= cutoff:
            self._prune(p, cutoff)
        if time <= cutoff:
            return False
        was_active = bool(p.times)
        if not p.times or time >= p.times[-1]:
            p.times.append(time)
            p.amounts.append(amount)
        else:
            i = bisect_right(p.times, time)
            p.times.insert(i, time)
            p.amounts.insert(i, amount)
        if not p.contracts and not p.expiry_scheduled:
            p.expiry_scheduled = True
            heapq.heappush(self._spend_expiry, (p.times[-1] + self.window_us, client, vendor))
        return not p.contracts and not was_active

    @staticmethod
    def _prune(p: Pair, cutoff: int) -> None:
        i = bisect_right(p.times, cutoff)
        del p.times[:i]
        del p.amounts[:i]

    def lapses(self, now: int) -> set[tuple[str, str]]:
        """Pairs whose activity may have changed because the watermark moved to `now`."""
        dirty: set[tuple[str, str]] = set()
        today = now // DAY_US
        ends = self._ends
        while ends and ends[0][0] < today:
            day, cid = heapq.heappop(ends)
            c = self.contracts[cid]
            if c.ends_on == day and not c.terminated:
                dirty.add((c.client, c.vendor))
        expiry = self._spend_expiry
        while expiry and expiry[0][0] <= now:
            _, client, vendor = heapq.heappop(expiry)
            p = self.pairs[(client, vendor)]
            last = p.times[-1] if p.times else None
            if last is not None and last + self.window_us > now and not p.contracts:
                heapq.heappush(expiry, (last + self.window_us, client, vendor))
                continue
            p.expiry_scheduled = False
            if not p.contracts:
                dirty.add((client, vendor))
        return dirty

    # -- queries -----------------------------------------------------------------------

    def active_contracts(self, client: str, vendor: str, now: int) -> list[Contract]:
        p = self.pairs.get((client, vendor))
        if p is None:
            return []
        today = now // DAY_US
        found = (self.contracts[cid] for cid in p.contracts)
        return sorted((c for c in found if c.active(today)), key=lambda c: c.contract_id)

    def spend_365d(self, client: str, vendor: str, now: int) -> float:
        p = self.pairs.get((client, vendor))
        if p is None or not p.times:
            return 0.0
        start = bisect_right(p.times, now - self.window_us)
        return math.fsum(p.amounts[start:])

    def is_active(self, client: str, vendor: str, now: int) -> bool:
        p = self.pairs.get((client, vendor))
        if p is None:
            return False
        if p.contracts:
            today = now // DAY_US
            return any(self.contracts[cid].active(today) for cid in p.contracts)
        return bool(p.times) and p.times[-1] > now - self.window_us

    def clients_of(self, vendor: str) -> set[str]:
        return self.by_vendor.get(vendor, set())
