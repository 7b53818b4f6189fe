"""Who holds how much of whom: holdings, effective stake through chains, and control (SPEC §2).

Holdings are kept twice: the *effective* graph (a pending `announced` holding counts in place
of the held one) decides stakes and control; the *held* graph (closed holdings only) tells
whether a conflict exists only through announcements. All arithmetic follows
docs/decisions.md so that every evaluation, incremental or from scratch, gives the same bits.

Memory, for millions of holdings: both graphs use one adjacency each way — an owner's row
holds its `Holding` objects, an asset's row its owners' ids — and a row is one member, a
few in a tuple or many in a dict (a dict of percents per node, as before, took 184 bytes
even for one entry). Percents are read from the holdings; `out_eff`, `out_held` and
`in_eff` build the percent rows on demand for readers. Entity ids are interned: one string
per entity, however many keys name it.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

__all__ = ["Change", "Exposure", "Holding", "OwnershipGraph", "Path"]

Path = tuple[str, ...]
_NO_FACTS: dict[str, tuple[float, bool, float] | None] = {}
_NO_ENTITIES: frozenset[str] = frozenset()
_FEW = 8  # members in a tuple up to this many, then in a dict keyed by id


@dataclass(slots=True)
class Holding:
    """One (owner, asset) pair: the closed value, the announced one, and the last event time.

    Which events set them is the provenance table's to remember (provenance.py); with four
    slots a holding fits a 64-byte block.
    """

    asset: str
    held: float | None = None
    pending: float | None = None
    last_time: int = 0

    @property
    def effective(self) -> float | None:
        return self.pending if self.pending is not None else self.held


# A node's neighbours, in the order they came: one, a few in a tuple, or a dict by id.
# `out` rows hold Holdings (an edge's asset and percents without a lookup: paths are walked
# out of owners); `owners` rows hold ids (read rarely: control checks and queries).
Row = Holding | tuple[Holding, ...] | dict[str, Holding]
Ids = str | tuple[str, ...] | dict[str, str]


def _members(row: Row | Ids) -> Iterable:
    kind = type(row)
    return row.values() if kind is dict else row if kind is tuple else (row,)


def _name(member: Holding | str) -> str:
    return member if type(member) is str else member.asset


class Change(NamedTuple):
    """One holding's effective and held values before and after an event."""

    owner: str
    asset: str
    eff_before: float | None
    eff_after: float | None
    held_before: float | None
    held_after: float | None


@dataclass(slots=True)
class Exposure:
    """Everything one entity R reaches: stakes and paths per target, control, and what was read."""

    paths: dict[str, list[tuple[float, Path]]] = field(default_factory=dict)
    stakes: dict[str, float] = field(default_factory=dict)
    held_stakes: dict[str, float] | None = None  # None: held graph equals effective here
    held_paths: dict[str, list[tuple[float, Path]]] | None = None
    controlled: frozenset[str] = frozenset()
    touched: frozenset[str] = frozenset()  # entities whose out-holdings this result read

    def stake(self, target: str) -> float:
        return self.stakes.get(target, 0.0)

    def held_stake(self, target: str) -> float:
        if self.held_stakes is None:
            return self.stake(target)
        return self.held_stakes.get(target, 0.0)


def _stakes(paths: dict[str, list[tuple[float, Path]]]) -> dict[str, float]:
    return {v: min(100.0, math.fsum(s for s, _ in ps)) for v, ps in paths.items()}


def facts(exposure: Exposure, target: str) -> tuple[float, bool, float]:
    """What a conflict's existence and severity read from one exposure."""
    return (
        round(exposure.stake(target), 9),
        target in exposure.controlled,
        round(exposure.held_stake(target), 9),
    )


def _swap(
    paths: dict[str, list[tuple[float, Path]]],
    stakes: dict[str, float],
    old_through: dict[str, list[tuple[float, Path]]],
    new_through: dict[str, list[tuple[float, Path]]],
) -> None:
    """Replace, in place, the paths `old_through` by the paths `new_through`.

    The lists in `paths` are replaced, never changed in place (a copy of `paths` may share
    them). `new_through`'s lists are fresh and become `paths`' own.
    """
    for target in old_through.keys() | new_through.keys():
        kept = paths.get(target)
        gone = old_through.get(target)
        fresh = new_through.get(target)
        if gone and kept:
            if len(kept) == 1 and len(gone) == 1 and kept[0][1] == gone[0][1]:
                kept = None  # the one path there was: gone (the common case)
            elif len(gone) == 1:
                drop = gone[0][1]
                kept = [sp for sp in kept if sp[1] != drop]
            else:
                drops = {p for _, p in gone}
                kept = [sp for sp in kept if sp[1] not in drops]
        if fresh:
            kept = kept + fresh if kept else fresh
        if kept:
            paths[target] = kept
            # math.fsum of one term is that term
            total = kept[0][0] if len(kept) == 1 else math.fsum(s for s, _ in kept)
            stakes[target] = min(100.0, total)
        else:
            paths.pop(target, None)
            stakes.pop(target, None)


class OwnershipGraph:
    """Holdings, and who holds what both ways: `out` (owner -> its holdings) and `owners`
    (asset -> owner ids) list every holding with a value, held or pending, for both graphs;
    `out_eff`, `out_held` and `in_eff` give one graph's rows with their percents."""

    def __init__(self, path_floor: float = 0.01) -> None:
        self.path_floor = path_floor
        self.holdings: dict[tuple[str, str], Holding] = {}
        self.out: dict[str, Row] = {}
        self.owners: dict[str, Ids] = {}
        self.pending_count = 0

    # -- updates -----------------------------------------------------------------------

    def last_time(self, owner: str, asset: str) -> int | None:
        h = self.holdings.get((owner, asset))
        return None if h is None else h.last_time

    def apply(
        self, owner: str, asset: str, percent: float, status: str, time: int
    ) -> Change | None:
        """Apply one validated, non-stale ownership event; the change, if any value moved."""
        owner, asset = sys.intern(owner), sys.intern(asset)  # the keys below keep them
        h = self.holdings.get((owner, asset))
        if h is None:
            h = self.holdings[(owner, asset)] = Holding(asset)
        before = (h.held, h.pending)
        eff_before = h.effective
        had_pending = h.pending is not None
        if status == "announced":
            h.pending = percent
        elif status == "closed":
            h.held = percent if percent > 0 else None
            h.pending = None
        else:  # cancelled
            h.pending = None
        h.last_time = time
        self.pending_count += (h.pending is not None) - had_pending
        after = (h.held, h.pending)
        if after == before:
            return None
        if before == (None, None):  # the holding has a value now
            _add(self.out, owner, h)
            _add(self.owners, asset, owner)
        elif after == (None, None):
            _drop(self.out, owner, h)
            _drop(self.owners, asset, owner)
        return Change(owner, asset, eff_before, h.effective, before[0], h.held)

    # -- queries -----------------------------------------------------------------------

    @property
    def out_eff(self) -> Rows:
        """owner -> {asset: effective percent > 0}, built on demand."""
        return Rows(self, inbound=False, held=False)

    @property
    def out_held(self) -> Rows:
        """owner -> {asset: held percent > 0}, built on demand."""
        return Rows(self, inbound=False, held=True)

    @property
    def in_eff(self) -> Rows:
        """asset -> {owner: effective percent > 0}, built on demand."""
        return Rows(self, inbound=True, held=False)

    def exposure(self, root: str) -> Exposure:
        """Effective stakes of `root` in everything it reaches, with paths and control."""
        paths, touched = self._paths(root, held=False)
        held_stakes = held_paths = None
        if self.pending_count:
            held_paths, held_touched = self._paths(root, held=True)
            touched |= held_touched
            held_stakes = _stakes(held_paths)
        controlled = self.controlled_by(root)
        return Exposure(
            paths,
            _stakes(paths),
            held_stakes,
            held_paths,
            controlled,
            frozenset(touched | controlled),
        )

    def _paths(self, root: str, held: bool) -> tuple[dict[str, list[tuple[float, Path]]], set[str]]:
        """All simple paths from root whose running stake stays at or above the floor, in
        the held graph or the effective one."""
        found: dict[str, list[tuple[float, Path]]] = {}
        touched = {root}
        self._extend([root], {root}, None, held, found, touched)
        return found, touched

    def _extend(
        self,
        path: list[str],
        on_path: set[str],
        stake: float | None,
        held: bool,
        found: dict[str, list[tuple[float, Path]]],
        reached: set[str],
    ) -> None:
        """Extend `path` (running stake `stake`, None at the root) by every simple
        continuation whose running stake stays at or above the floor."""
        out = self.out
        row = out.get(path[-1])
        if row is None:
            return
        floor = self.path_floor
        kind = type(row)
        for h in row.values() if kind is dict else row if kind is tuple else (row,):  # inline
            nxt = h.asset
            if nxt in on_path:
                continue
            pct = h.held if held or h.pending is None else h.pending
            if pct is None or pct <= 0:
                continue
            s = pct if stake is None else stake * pct / 100
            if s < floor:
                continue
            path.append(nxt)
            found.setdefault(nxt, []).append((s, tuple(path)))
            reached.add(nxt)
            if nxt in out:
                on_path.add(nxt)
                self._extend(path, on_path, s, held, found, reached)
                on_path.discard(nxt)
            path.pop()

    def _follow(
        self,
        prefixes: list[tuple[float | None, Path]],
        asset: str,
        value: float | None,
        held: bool,
        found: dict[str, list[tuple[float, Path]]],
        reached: set[str],
    ) -> None:
        """The paths that continue each prefix by a holding in `asset` worth `value`
        (which may differ from the graph's: the value before a change)."""
        if value is None or value <= 0:
            return
        floor = self.path_floor
        onward = asset in self.out
        for stake, prefix in prefixes:
            if asset in prefix:
                continue
            s = value if stake is None else stake * value / 100
            if s < floor:
                continue
            path = (*prefix, asset)
            found.setdefault(asset, []).append((s, path))
            reached.add(asset)
            if onward:
                self._extend(list(path), set(path), s, held, found, reached)

    def update(
        self, exp: Exposure, root: str, ch: Change, threshold: float
    ) -> tuple[dict[str, tuple[float, bool, float] | None], set[str]]:
        """Bring `exp` up to date, in place, after one holding changed; only the paths
        through that holding are followed.

        Paths that reach the owner cannot use the changed holding (the owner would appear
        twice), so they are the fixed prefixes; only their continuations through the holding
        are enumerated again, with the old and with the new value. The held graph is
        followed the same way; where it was equal to the effective one (`held_paths` None),
        the effective paths before the change stand in for it.

        Returns the targets whose figures may have moved, each with its figures before the
        change (`facts`; None where the stake was below `threshold`, so that no conflict
        existed, which is all that is then needed), and the entities the exposure reads now
        and did not read before.
        """
        owner, asset = ch.owner, ch.asset
        own = [(None, (root,))] if owner == root else None
        eff_prefixes = own or exp.paths.get(owner)
        held_prefixes = None
        if self.pending_count and ch.held_before != ch.held_after:
            held_paths = exp.held_paths if exp.held_paths is not None else exp.paths
            held_prefixes = own or held_paths.get(owner)
        recontrol = owner in exp.controlled and self._control_may_change(exp.controlled, ch)
        if not eff_prefixes and not held_prefixes and not recontrol:
            # Nothing this exposure reads moved; only the held graph's bookkeeping follows
            # the rule below (held_paths None while it would equal the effective paths).
            if not self.pending_count:
                exp.held_paths = exp.held_stakes = None
            return _NO_FACTS, _NO_ENTITIES
        reached: set[str] = set()
        eff_old: dict[str, list[tuple[float, Path]]] = {}
        eff_new: dict[str, list[tuple[float, Path]]] = {}
        if eff_prefixes:
            scratch: set[str] = set()
            self._follow(eff_prefixes, asset, ch.eff_before, False, eff_old, scratch)
            self._follow(eff_prefixes, asset, ch.eff_after, False, eff_new, reached)
        targets = eff_old.keys() | eff_new.keys()
        held_old: dict[str, list[tuple[float, Path]]] = {}
        held_new: dict[str, list[tuple[float, Path]]] = {}
        if held_prefixes:
            scratch = set()
            self._follow(held_prefixes, asset, ch.held_before, True, held_old, scratch)
            self._follow(held_prefixes, asset, ch.held_after, True, held_new, reached)
            targets |= held_old.keys() | held_new.keys()
        controlled = exp.controlled
        if recontrol:
            controlled = self.controlled_by(root)
            targets |= controlled ^ exp.controlled
            reached |= controlled
        stakes = exp.stakes
        before = {
            target: facts(exp, target) if round(stakes.get(target, 0.0), 9) >= threshold else None
            for target in targets
        }
        # -- from here on, exp changes --
        if not self.pending_count:
            exp.held_paths = exp.held_stakes = None  # no announcement anywhere: one graph
        elif exp.held_paths is None:
            exp.held_paths, exp.held_stakes = dict(exp.paths), dict(exp.stakes)
        _swap(exp.paths, exp.stakes, eff_old, eff_new)
        if self.pending_count and (held_old or held_new):
            assert exp.held_paths is not None and exp.held_stakes is not None
            _swap(exp.held_paths, exp.held_stakes, held_old, held_new)
        exp.controlled = controlled
        added = reached - exp.touched
        if added:
            exp.touched = exp.touched | added
        return before, added

    def _control_may_change(self, controlled: frozenset[str], ch: Change) -> bool:
        """Whether a change to a holding of a controlled owner can change `controlled`
        (the least set closed under "held > 50 % by members"); False only when it
        certainly cannot:

        - the effective value did not move;
        - it rose, and the asset is controlled already, or its holdings by controlled
          entities (this one at its new value) still add up to 50 % or less — the set is
          still closed, and larger values can only grow the least closed set;
        - it fell, and the asset is not controlled: no member's control rested on it.
        """
        before = ch.eff_before or 0.0
        after = ch.eff_after or 0.0
        if after == before:
            return False
        asset = ch.asset
        if after < before:
            return asset in controlled
        if asset in controlled:
            return False
        owners = self.owners.get(asset)
        if owners is None:
            return False
        parts = []
        for owner in _members(owners):
            if owner in controlled:
                pct = self.holdings[owner, asset].effective
                if pct is not None and pct > 0:
                    parts.append(pct)
        return math.fsum(parts) > 50

    def controlled_by(self, root: str) -> frozenset[str]:
        """Entities `root` controls: itself, and any X held > 50 % by controlled entities."""
        controlled = {root}
        contributions: dict[str, list[float]] = {}
        queue = [root]
        out = self.out
        while queue:
            row = out.get(queue.pop())
            if row is None:
                continue
            for h in _members(row):
                x = h.asset
                if x in controlled:
                    continue
                pct = h.effective
                if pct is None or pct <= 0:
                    continue
                parts = contributions.get(x)
                if parts is None:
                    contributions[x] = [pct]
                    total = pct  # math.fsum([pct]) == pct
                else:
                    parts.append(pct)
                    total = math.fsum(parts)
                if total > 50:
                    controlled.add(x)
                    queue.append(x)
        return frozenset(controlled)

    def owners_of(self, asset: str) -> dict[str, float]:
        return self.in_eff.get(asset, {})

    def holdings_of(self, owner: str) -> dict[str, float]:
        return self.out_eff.get(owner, {})


def _add(index: dict, key: str, member: Holding | str) -> None:
    """Add `member` to the row of `key` (which does not hold it yet)."""
    row = index.get(key)
    if row is None:
        index[key] = member
    elif type(row) is dict:
        row[_name(member)] = member
    else:
        more = (*_members(row), member)
        index[key] = more if len(more) <= _FEW else {_name(m): m for m in more}


def _drop(index: dict, key: str, member: Holding | str) -> None:
    """Remove `member` from the row of `key` (which holds it)."""
    row = index[key]
    name = _name(member)
    if type(row) is dict:
        del row[name]
        if len(row) > 1:
            return
    rest = tuple(m for m in _members(row) if _name(m) != name)
    if not rest:
        del index[key]
    else:
        index[key] = rest[0] if len(rest) == 1 else rest


class Rows(Mapping[str, dict[str, float]]):
    """One graph's rows as readers know them — node -> {neighbour: percent > 0}, effective
    or held, out or in — each built on demand from the id index and the holdings (a fresh
    dict: changing it changes nothing)."""

    __slots__ = ("_graph", "_held", "_inbound")

    def __init__(self, graph: OwnershipGraph, inbound: bool, held: bool) -> None:
        self._graph = graph
        self._inbound = inbound
        self._held = held

    def _row(self, node: str) -> dict[str, float]:
        graph = self._graph
        if self._inbound:
            owners = graph.owners.get(node)
            found = () if owners is None else _members(owners)
            holdings = ((o, graph.holdings[o, node]) for o in found)
        else:
            out = graph.out.get(node)
            holdings = ((h.asset, h) for h in (() if out is None else _members(out)))
        row = {}
        for other, h in holdings:
            pct = h.held if self._held else h.effective
            if pct is not None and pct > 0:
                row[other] = pct
        return row

    def __getitem__(self, node: str) -> dict[str, float]:
        row = self._row(node)
        if not row:
            raise KeyError(node)
        return row

    def __contains__(self, node: object) -> bool:
        return isinstance(node, str) and bool(self._row(node))

    def __iter__(self) -> Iterator[str]:
        index = self._graph.owners if self._inbound else self._graph.out
        return (node for node in index if self._row(node))

    def __len__(self) -> int:
        return sum(1 for _ in self)
