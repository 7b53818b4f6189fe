"""Who depends on which vendor: contracts, trailing-year spend, and when a pair is active.

Time-based lapses (a contract's `ends_on`, the last spend of a never-contracted pair ageing
out) come off priority queues as the watermark moves, so no event ever scans every pair.

Millions of contracts and pairs are the bulk of a large state, so each keeps only what it
needs: entity ids are interned (one string per entity, however many keys name it), equal
data-class tuples are one object, a pair's spend arrays exist only once it has spend, and a
contract keeps no tuple of events until it is amended or terminated.
"""

from __future__ import annotations

import heapq
import math
import sys
from array import array
from bisect import bisect_right
from collections.abc import Collection
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

__all__ = ["Contract", "Pair", "Relationships"]

DAY_US = 86_400_000_000
_contract_id = attrgetter("contract_id")
_NO_PAIRS: frozenset[tuple[str, str]] = frozenset()
_SMALL = 8  # a vendor's clients are a tuple up to this many
_intern = sys.intern
_classes: dict[tuple[str, ...], tuple[str, ...]] = {}  # canonical data-class tuples


def canonical_classes(classes: tuple[str, ...]) -> tuple[str, ...]:
    """One object for equal data-class tuples (a few dozen combinations across millions of
    contracts); a bounded cache: it only ever saves memory, never changes a value."""
    found = _classes.get(classes)
    if found is None:
        if len(_classes) >= 4096:
            _classes.clear()
        found = _classes[classes] = tuple(_intern(c) for c in classes)
    return found


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
    later_events: tuple[str, ...] = ()  # amendments and termination, in order

    @property
    def events(self) -> tuple[str, ...]:
        """Ids of the events that made it, the signing first."""
        return (self.signed_event, *self.later_events)

    def active(self, today: int) -> bool:
        return not self.terminated and (self.ends_on is None or self.ends_on >= today)


@dataclass(slots=True)
class Pair:
    """One client–vendor pair: its contracts (ever signed) and its spend, sorted by time.

    Lean, as there are millions: `ids` is the one contract's id (most pairs have one), a
    tuple of several, or () for none; the spend arrays are None until the first spend.
    """

    ids: str | tuple[str, ...] = ()
    times: array[int] | None = None
    amounts: array[float] | None = None
    expiry_scheduled: bool = False

    @property
    def contracts(self) -> tuple[str, ...]:
        """Ids of the pair's contracts, in signing order."""
        ids = self.ids
        return (ids,) if isinstance(ids, str) else ids


class Relationships:
    """Contracts and spend by (client, vendor), with the lapse queues."""

    def __init__(self, window_days: int = 365) -> None:
        self.window_us = window_days * DAY_US
        self.contracts: dict[str, Contract] = {}
        self.pairs: dict[tuple[str, str], Pair] = {}
        # vendor -> its clients: one id, a tuple of a few, or a set (an empty set is 216 bytes)
        self.by_vendor: dict[str, str | tuple[str, ...] | set[str]] = {}
        self.by_category: dict[str, set[str]] = {}
        self._ends: list[tuple[int, str]] = []  # (ends_on day, contract_id), lazily invalidated
        self._spend_expiry: list[tuple[int, str, str]] = []  # (time it ages out, client, vendor)

    def pair(self, client: str, vendor: str) -> Pair:
        p = self.pairs.get((client, vendor))
        if p is None:
            client, vendor = _intern(client), _intern(vendor)
            p = self.pairs[(client, vendor)] = Pair()
            clients = self.by_vendor.get(vendor)
            if clients is None:
                self.by_vendor[vendor] = client
            elif isinstance(clients, str):
                self.by_vendor[vendor] = (clients, client)
            elif isinstance(clients, tuple):
                more = (*clients, client)
                self.by_vendor[vendor] = more if len(more) <= _SMALL else set(more)
            else:
                clients.add(client)
        return p

    # -- updates -----------------------------------------------------------------------

    def sign(self, c: Contract) -> None:
        """Record a new contract (its client and vendor ids are interned here)."""
        c.client, c.vendor = _intern(c.client), _intern(c.vendor)
        c.category = _intern(c.category)
        c.data_classes = canonical_classes(c.data_classes)
        self.contracts[c.contract_id] = c
        p = self.pair(c.client, c.vendor)
        p.ids = c.contract_id if not p.ids else (*p.contracts, c.contract_id)
        self.by_category.setdefault(c.category, set()).add(c.vendor)
        if c.ends_on is not None:
            heapq.heappush(self._ends, (c.ends_on, c.contract_id))

    def amend(self, c: Contract, changes: dict[str, Any]) -> None:
        for key, value in changes.items():
            if key == "data_classes":
                value = canonical_classes(value)
            elif key == "category":
                value = _intern(value)
            setattr(c, key, value)
        if "category" in changes:
            self.by_category.setdefault(c.category, set()).add(c.vendor)
        if c.ends_on is not None and changes.get("ends_on") is not None:
            heapq.heappush(self._ends, (c.ends_on, c.contract_id))

    def add_spend(self, client: str, vendor: str, time: int, amount: float, now: int) -> bool:
        """Record spend; True when it is the only in-window spend of a never-contracted pair."""
        p = self.pairs.get((client, vendor)) or self.pair(client, vendor)
        times, amounts = p.times, p.amounts
        cutoff = now - self.window_us
        # A contracted pair's activity does not read its spend, and `spend_365d` bisects:
        # its aged-out spend is dropped once it is half the list (amortised), not each time.
        if times and times[0] <= cutoff and (not p.ids or times[len(times) >> 1] <= cutoff):
            self._prune(p, cutoff)
        if time <= cutoff:
            return False
        if times is None or amounts is None:
            times = p.times = array("q")
            amounts = p.amounts = array("d")
        was_active = len(times) > 0
        if not was_active or time >= times[-1]:
            times.append(time)
            amounts.append(amount)
        else:
            i = bisect_right(times, time)
            times.insert(i, time)
            amounts.insert(i, amount)
        if p.ids:
            return False
        if not p.expiry_scheduled:
            p.expiry_scheduled = True
            heapq.heappush(self._spend_expiry, (times[-1] + self.window_us, client, vendor))
        return not was_active

    def keep_clients(self, clients: frozenset[str]) -> None:
        """Forget every other client's contracts and spend (a scoped what-if's copy, so
        that its answers cannot depend on them). Categories are the kept contracts' current
        ones."""
        self.contracts = {k: c for k, c in self.contracts.items() if c.client in clients}
        self.pairs = {k: p for k, p in self.pairs.items() if k[0] in clients}
        grouped: dict[str, list[str]] = {}
        for client, vendor in self.pairs:
            grouped.setdefault(vendor, []).append(client)
        self.by_vendor = {
            v: cs[0] if len(cs) == 1 else tuple(cs) if len(cs) <= _SMALL else set(cs)
            for v, cs in grouped.items()
        }
        self.by_category = {}
        for c in self.contracts.values():
            self.by_category.setdefault(c.category, set()).add(c.vendor)
        self._ends = [e for e in self._ends if e[1] in self.contracts]
        self._spend_expiry = [e for e in self._spend_expiry if e[1] in clients]
        heapq.heapify(self._ends)
        heapq.heapify(self._spend_expiry)

    @staticmethod
    def _prune(p: Pair, cutoff: int) -> None:
        times, amounts = p.times, p.amounts
        assert times is not None and amounts is not None  # called for pairs with spend
        i = bisect_right(times, cutoff)
        del times[:i]
        del amounts[:i]

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
            if last is not None and last + self.window_us > now and not p.ids:
                heapq.heappush(expiry, (last + self.window_us, client, vendor))
                continue
            p.expiry_scheduled = False
            if not p.ids:
                dirty.add((client, vendor))
        return dirty

    # -- queries -----------------------------------------------------------------------

    def active_contracts(self, client: str, vendor: str, now: int) -> list[Contract]:
        """The pair's contracts active at `now`, by contract id."""
        p = self.pairs.get((client, vendor))
        if p is None or not p.ids:
            return []
        return self._active(p, now // DAY_US)

    def _active(self, p: Pair, today: int) -> list[Contract]:
        contracts = self.contracts
        ids = p.ids
        if type(ids) is str:  # one contract: the common case
            c = contracts[ids]
            return [c] if c.active(today) else []
        found = [c for cid in ids if (c := contracts[cid]).active(today)]
        if len(found) > 1:
            found.sort(key=_contract_id)
        return found

    def activity(self, client: str, vendor: str, now: int) -> list[Contract] | None:
        """None when the pair is not active at `now`; else its active contracts (empty
        for a pair active through spend alone) — `is_active` and `active_contracts` in one."""
        p = self.pairs.get((client, vendor))
        if p is None:
            return None
        if p.ids:
            return self._active(p, now // DAY_US) or None
        return [] if p.times and p.times[-1] > now - self.window_us else None

    def spend_365d(self, client: str, vendor: str, now: int) -> float:
        p = self.pairs.get((client, vendor))
        if p is None or not p.times or p.amounts is None:
            return 0.0
        start = bisect_right(p.times, now - self.window_us)
        return math.fsum(p.amounts[start:])

    def is_active(self, client: str, vendor: str, now: int) -> bool:
        return self.activity(client, vendor, now) is not None

    def clients_of(self, vendor: str) -> Collection[str]:
        """Every client that ever dealt with `vendor` (a tuple or a set; do not change it)."""
        clients = self.by_vendor.get(vendor, ())
        return (clients,) if type(clients) is str else clients
