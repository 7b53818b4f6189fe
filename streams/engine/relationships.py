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
from operator import attrgetter

__all__ = ["Contract", "Pair", "Relationships"]

DAY_US = 86_400_000_000
_contract_id = attrgetter("contract_id")
_NO_PAIRS: frozenset[tuple[str, str]] = frozenset()


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
    events: tuple[str, ...] = ()  # ids of the events that made it; a tuple: no GC tracking

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
        p = self.pairs.get((client, vendor)) or self.pair(client, vendor)
        times = p.times
        cutoff = now - self.window_us
        # A contracted pair's activity does not read its spend, and `spend_365d` bisects:
        # its aged-out spend is dropped once it is half the list (amortised), not each time.
        if times and times[0] <= cutoff and (not p.contracts or times[len(times) >> 1] <= cutoff):
            self._prune(p, cutoff)
        if time <= cutoff:
            return False
        was_active = len(times) > 0
        if not was_active or time >= times[-1]:
            times.append(time)
            p.amounts.append(amount)
        else:
            i = bisect_right(times, time)
            times.insert(i, time)
            p.amounts.insert(i, amount)
        if p.contracts:
            return False
        if not p.expiry_scheduled:
            p.expiry_scheduled = True
            heapq.heappush(self._spend_expiry, (times[-1] + self.window_us, client, vendor))
        return not was_active

    @staticmethod
    def _prune(p: Pair, cutoff: int) -> None:
        i = bisect_right(p.times, cutoff)
        del p.times[:i]
        del p.amounts[:i]

    def lapses(self, now: int) -> set[tuple[str, str]] | frozenset[tuple[str, str]]:
        """Pairs whose activity may have changed because the watermark moved to `now`."""
        today = now // DAY_US
        ends = self._ends
        expiry = self._spend_expiry
        if (not ends or ends[0][0] >= today) and (not expiry or expiry[0][0] > now):
            return _NO_PAIRS  # nothing due: the common case, without allocating
        dirty: set[tuple[str, str]] = set()
        while ends and ends[0][0] < today:
            day, cid = heapq.heappop(ends)
            c = self.contracts[cid]
            if c.ends_on == day and not c.terminated:
                dirty.add((c.client, c.vendor))
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
        """The pair's contracts active at `now`, by contract id."""
        p = self.pairs.get((client, vendor))
        if p is None or not p.contracts:
            return []
        return self._active(p, now // DAY_US)

    def _active(self, p: Pair, today: int) -> list[Contract]:
        contracts = self.contracts
        found = []
        for cid in p.contracts:
            c = contracts[cid]
            if not c.terminated and (c.ends_on is None or c.ends_on >= today):  # c.active()
                found.append(c)
        if len(found) > 1:
            found.sort(key=_contract_id)
        return found

    def activity(self, client: str, vendor: str, now: int) -> list[Contract] | None:
        """None when the pair is not active at `now`; else its active contracts (empty
        for a pair active through spend alone) — `is_active` and `active_contracts` in one."""
        p = self.pairs.get((client, vendor))
        if p is None:
            return None
        if p.contracts:
            return self._active(p, now // DAY_US) or None
        return [] if p.times and p.times[-1] > now - self.window_us else None

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
