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

Inconsistent feeds (SPEC §2): where the holdings in an asset add up to more than 100 % in a
graph, each counts pro rata (`counted`), and no path has more than `max_holdings` holdings.
Both graphs keep the claimed total of each over-allocated asset (`over_eff`, `over_held`), so
a traversal pays one lookup in an empty dict per edge in the common case. With both rules
the paths from R to V above the floor number at most 10⁴ per length (docs/architecture.md,
"Bounded work"); traversals are iterative, so a chain of any length cannot exhaust the stack.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Container, Iterable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from itertools import pairwise
from operator import itemgetter
from typing import Any, NamedTuple

from streams.engine.rules import judged_stake, meets_threshold

__all__ = ["Change", "Exposure", "Holding", "OwnershipGraph", "Path", "counted"]

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


def _members(row: Row | Ids) -> Iterable[Any]:
    if isinstance(row, dict):
        return row.values()
    return row if isinstance(row, tuple) else (row,)


def _name(member: Holding | str) -> str:
    return member if isinstance(member, str) else member.asset


def counted(value: float, total: float | None) -> float:
    """A holding's counted percent: as claimed, or pro rata (× 100 / total) where the
    asset's holdings in the graph claim `total` > 100 (None: not over-allocated)."""
    return value if total is None else value * 100 / total


def _scaled(value: float | None, total: float | None) -> float | None:
    return None if value is None or total is None else value * 100 / total


class Change(NamedTuple):
    """One holding's effective and held values before and after an event, and the asset's
    claimed totals in each graph (None while at most 100 %) before and after it."""

    owner: str
    asset: str
    eff_before: float | None
    eff_after: float | None
    held_before: float | None
    held_after: float | None
    eff_total_before: float | None = None
    eff_total_after: float | None = None
    held_total_before: float | None = None
    held_total_after: float | None = None

    @property
    def rescaled(self) -> bool:
        """Whether the counted values of the asset's other holdings moved too."""
        return (
            self.eff_total_before != self.eff_total_after
            or self.held_total_before != self.held_total_after
        )

    @property
    def overallocation(self) -> tuple[bool, bool]:
        """Whether the asset was over-allocated (in either graph) before, and after."""
        return (
            self.eff_total_before is not None or self.held_total_before is not None,
            self.eff_total_after is not None or self.held_total_after is not None,
        )


@dataclass(slots=True)
class Exposure:
    """Everything one entity R reaches: stakes and paths per target, control, and what was read."""

    paths: dict[str, list[tuple[float, Path]]] = field(default_factory=dict)
    stakes: dict[str, float] = field(default_factory=dict)
    held_stakes: dict[str, float] | None = None  # None: held graph equals effective here
    held_paths: dict[str, list[tuple[float, Path]]] | None = None
    # both grow in place as holdings change (a copy is the caller's to make: exposure_of)
    controlled: set[str] = field(default_factory=set)
    touched: set[str] = field(default_factory=set)  # entities whose out-holdings it read
    # False: the held graph's paths are not kept (the rule set never reads `pending`); the
    # engine computes held stakes when a record or a query needs them (`held_stakes_of`)
    held_tracked: bool = True

    def stake(self, target: str) -> float:
        return self.stakes.get(target, 0.0)

    def held_stake(self, target: str) -> float:
        if self.held_stakes is None:
            return self.stake(target)
        return self.held_stakes.get(target, 0.0)


_stake_of, _path_of = itemgetter(0), itemgetter(1)


def _stakes(paths: dict[str, list[tuple[float, Path]]]) -> dict[str, float]:
    return {v: min(100.0, math.fsum(map(_stake_of, ps))) for v, ps in paths.items()}


def facts(exposure: Exposure, target: str) -> tuple[float, bool, float]:
    """What a conflict's existence and severity read from one exposure (the held stake only
    where it is kept: where it is not, no rule reads it)."""
    return (
        judged_stake(exposure.stake(target)),
        target in exposure.controlled,
        judged_stake(exposure.held_stake(target)) if exposure.held_tracked else 0.0,
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
            elif len(gone) == len(kept):
                kept = None  # every path there was went through the change
            else:
                drops = set(map(_path_of, gone))
                kept = [sp for sp in kept if sp[1] not in drops]
        if fresh:
            kept = kept + fresh if kept else fresh
        if kept:
            paths[target] = kept
            # math.fsum of one term is that term
            total = kept[0][0] if len(kept) == 1 else math.fsum(map(_stake_of, kept))
            stakes[target] = min(100.0, total)
        else:
            paths.pop(target, None)
            stakes.pop(target, None)


class OwnershipGraph:
    """Holdings, and who holds what both ways: `out` (owner -> its holdings) and `owners`
    (asset -> owner ids) list every holding with a value, held or pending, for both graphs;
    `out_eff`, `out_held` and `in_eff` give one graph's rows with their percents (as
    claimed; `counted_in` gives the counted ones)."""

    def __init__(self, path_floor: float = 0.01, max_holdings: int = 16) -> None:
        self.path_floor = path_floor
        self.max_holdings = max_holdings
        self.holdings: dict[tuple[str, str], Holding] = {}
        self.out: dict[str, Row] = {}
        self.owners: dict[str, Ids] = {}
        self.pending_count = 0
        # asset -> claimed total, only while above 100 % (effective / held graph)
        self.over_eff: dict[str, float] = {}
        self.over_held: dict[str, float] = {}

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
        eff_totals = held_totals = _NOT_OVER
        eff_changed, held_changed = h.effective != eff_before, h.held != before[0]
        row = self.owners.get(asset)
        if row is None or type(row) is str:
            # one owner or none: at most 100 %, whatever it was before
            if eff_changed and self.over_eff:
                eff_totals = (self.over_eff.pop(asset, None), None)
            if held_changed and self.over_held:
                held_totals = (self.over_held.pop(asset, None), None)
        else:
            if eff_changed:
                eff_totals = _retotal(self.over_eff, asset, self.claimed(asset))
            if held_changed:
                held_totals = _retotal(self.over_held, asset, self.claimed(asset, held=True))
        return Change(
            owner, asset, eff_before, h.effective, before[0], h.held, *eff_totals, *held_totals
        )

    # -- queries -----------------------------------------------------------------------

    def claimed(self, asset: str, held: bool = False) -> float:
        """The sum of the holdings in `asset` as claimed (math.fsum: the same bits in any
        order), in the held graph or the effective one."""
        owners = self.owners.get(asset)
        if owners is None:
            return 0.0
        values = []
        for owner in _members(owners):
            h = self.holdings[owner, asset]
            value = h.held if held else h.effective
            if value is not None and value > 0:
                values.append(value)
        return math.fsum(values)

    @property
    def overallocated(self) -> set[str]:
        """Assets whose holdings claim more than 100 % in either graph."""
        return self.over_eff.keys() | self.over_held.keys()

    def counted_in(self, asset: str, held: bool = False) -> dict[str, float]:
        """owner -> counted percent (> 0) of each holding in `asset`, in one graph."""
        total = (self.over_held if held else self.over_eff).get(asset)
        row = {}
        owners = self.owners.get(asset)
        for owner in () if owners is None else _members(owners):
            h = self.holdings[owner, asset]
            value = h.held if held else h.effective
            if value is not None and value > 0:
                row[owner] = counted(value, total)
        return row

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

    def exposure(self, root: str, track_held: bool = True) -> Exposure:
        """Effective stakes of `root` in everything it reaches, with paths and control; and
        the held graph's paths, unless `track_held` is False."""
        paths, touched = self._paths(root, held=False)
        held_stakes = held_paths = None
        if self.pending_count and track_held:
            held_paths, held_touched = self._paths(root, held=True)
            touched |= held_touched
            held_stakes = _stakes(held_paths)
        controlled = set(self.controlled_by(root))
        return Exposure(
            paths,
            _stakes(paths),
            held_stakes,
            held_paths,
            controlled,
            touched | controlled,
            track_held,
        )

    def held_stakes_of(self, root: str) -> dict[str, float] | None:
        """`root`'s stakes in the held graph (closed holdings only), from scratch; None
        while no holding is pending anywhere (the held graph is the effective one)."""
        if not self.pending_count:
            return None
        return _stakes(self._paths(root, held=True)[0])

    def _paths(self, root: str, held: bool) -> tuple[dict[str, list[tuple[float, Path]]], set[str]]:
        """All simple paths from root whose running stake stays at or above the floor, in
        the held graph or the effective one."""
        found: dict[str, list[tuple[float, Path]]] = {}
        self._extend([root], {root}, None, held, found)
        return found, {root, *found}

    def _extend(
        self,
        path: list[str],
        on_path: set[str],
        stake: float | None,
        held: bool,
        found: dict[str, list[tuple[float, Path]]],
    ) -> None:
        """Extend `path` (running stake `stake`, None at the root) by every simple
        continuation of at most `max_holdings` holdings in all whose running stake stays at
        or above the floor. Depth first with an explicit stack: `path` and `on_path` come
        back as they were given."""
        limit = self.max_holdings
        out = self.out
        row = out.get(path[-1])
        if row is None or len(path) > limit:
            return
        floor = self.path_floor
        totals = self.over_held if held else self.over_eff
        base = len(path)
        stack = [(iter(_members(row)), stake)]
        while stack:
            holdings, prior = stack[-1]
            for h in holdings:
                nxt = h.asset
                if nxt in on_path:
                    continue
                pct = h.held if held or h.pending is None else h.pending
                if pct is None or pct <= 0:
                    continue
                if totals:
                    total = totals.get(nxt)
                    if total is not None:
                        pct = pct * 100 / total
                s = pct if prior is None else prior * pct / 100
                if s < floor:
                    continue
                path.append(nxt)
                known = found.get(nxt)
                if known is None:
                    found[nxt] = [(s, tuple(path))]
                else:
                    known.append((s, tuple(path)))
                if len(path) <= limit:  # one more holding would still be within the limit
                    onward = out.get(nxt)
                    if onward is not None:
                        on_path.add(nxt)
                        stack.append((iter(_members(onward)), s))
                        break
                path.pop()
            else:
                stack.pop()
                if len(path) > base:
                    on_path.discard(path.pop())

    def _follow(
        self,
        prefixes: Sequence[tuple[float | None, Path]],
        asset: str,
        before: float | None,
        after: float | None,
        held: bool,
        old: dict[str, list[tuple[float, Path]]],
        new: dict[str, list[tuple[float, Path]]],
    ) -> None:
        """The paths that continue each prefix by a holding in `asset` counted at `before`
        (into `old`) and at `after` (into `new`), in one walk: beyond the holding both see
        the same graph, so only the running stakes differ, and a path goes to each side
        that keeps it above the floor."""
        floor = self.path_floor
        limit = self.max_holdings
        onward = asset in self.out
        b = before if before is not None and before > 0 else None
        a = after if after is not None and after > 0 else None
        if b is None and a is None:
            return
        for stake, prefix in prefixes:
            if asset in prefix or len(prefix) > limit:
                continue
            so = -1.0 if b is None else b if stake is None else stake * b / 100
            sn = -1.0 if a is None else a if stake is None else stake * a / 100
            if so < floor and sn < floor:
                continue
            path = (*prefix, asset)
            if so >= floor:
                old.setdefault(asset, []).append((so, path))
            if sn >= floor:
                new.setdefault(asset, []).append((sn, path))
            if onward:
                self._extend_pair(list(path), set(path), so, sn, held, old, new)

    def _extend_pair(
        self,
        path: list[str],
        on_path: set[str],
        old_stake: float,
        new_stake: float,
        held: bool,
        old: dict[str, list[tuple[float, Path]]],
        new: dict[str, list[tuple[float, Path]]],
    ) -> None:
        """`_extend` with two running stakes (before and after a change behind the path):
        each continuation goes to the side(s) whose stake stays at or above the floor, and
        is followed while either does. A side below the floor stays below it (holdings
        count at most 100 %), so its stake is then carried as -1."""
        limit = self.max_holdings
        out = self.out
        row = out.get(path[-1])
        if row is None or len(path) > limit:
            return
        floor = self.path_floor
        totals = self.over_held if held else self.over_eff
        base = len(path)
        stack = [(iter(_members(row)), old_stake, new_stake)]
        while stack:
            holdings, prior_old, prior_new = stack[-1]
            for h in holdings:
                nxt = h.asset
                if nxt in on_path:
                    continue
                pct = h.held if held or h.pending is None else h.pending
                if pct is None or pct <= 0:
                    continue
                if totals:
                    total = totals.get(nxt)
                    if total is not None:
                        pct = pct * 100 / total
                so = prior_old * pct / 100 if prior_old >= floor else -1.0
                sn = prior_new * pct / 100 if prior_new >= floor else -1.0
                keep_old, keep_new = so >= floor, sn >= floor
                if not keep_old and not keep_new:
                    continue
                path.append(nxt)
                entry = tuple(path)
                if keep_old:
                    known = old.get(nxt)
                    if known is None:
                        old[nxt] = [(so, entry)]
                    else:
                        known.append((so, entry))
                if keep_new:
                    known = new.get(nxt)
                    if known is None:
                        new[nxt] = [(sn, entry)]
                    else:
                        known.append((sn, entry))
                if len(path) <= limit:
                    onward = out.get(nxt)
                    if onward is not None:
                        on_path.add(nxt)
                        stack.append((iter(_members(onward)), so, sn))
                        break
                path.pop()
            else:
                stack.pop()
                if len(path) > base:
                    on_path.discard(path.pop())

    def _changed_edges(
        self, ch: Change, held: bool
    ) -> list[tuple[str, float | None, float | None]]:
        """(owner, counted before, counted after) of each holding in the changed asset whose
        counted value moved in one graph: the changed holding, and all the asset's others
        when its over-allocation changed."""
        if held:
            before, after = ch.held_before, ch.held_after
            t_before, t_after = ch.held_total_before, ch.held_total_after
        else:
            before, after = ch.eff_before, ch.eff_after
            t_before, t_after = ch.eff_total_before, ch.eff_total_after
        if before == after:
            return []
        edges = [
            (
                ch.owner,
                before if t_before is None else _scaled(before, t_before),
                after if t_after is None else _scaled(after, t_after),
            )
        ]
        if t_before != t_after:
            owners = self.owners.get(ch.asset)
            for other in () if owners is None else _members(owners):
                if other == ch.owner:
                    continue
                h = self.holdings[other, ch.asset]
                value = h.held if held else h.effective
                if value is not None and value > 0:
                    edges.append((other, counted(value, t_before), counted(value, t_after)))
        return edges

    def update(
        self, exp: Exposure, root: str, ch: Change, threshold: float
    ) -> tuple[dict[str, tuple[float, bool, float] | None], AbstractSet[str]]:
        """Bring `exp` up to date, in place, after one holding changed; only the paths
        through the holdings in the changed asset whose counted values moved are followed
        (that one holding, or all of the asset's where its over-allocation changed).

        Paths that reach an owner of the asset cannot use a holding in it (they would meet
        the asset twice if they passed through it), so they are the fixed prefixes; only
        their continuations through the asset are enumerated again, with the old and with
        the new counted values. The held graph is followed the same way; where it was
        equal to the effective one (`held_paths` None), the effective paths before the
        change stand in for it.

        Returns the targets whose figures may have moved, each with its figures before the
        change (`facts`; None where the stake was below `threshold`, so that no conflict
        existed, which is all that is then needed), and the entities the exposure reads now
        and did not read before.
        """
        asset = ch.asset
        own: list[tuple[float | None, Path]] = [(None, (root,))]
        eff_work: _Work = [
            (prefixes, before, after)
            for owner, before, after in self._changed_edges(ch, held=False)
            if (prefixes := own if owner == root else exp.paths.get(owner))
        ]
        held_work: _Work = []
        tracked = exp.held_tracked
        if self.pending_count and tracked:
            held_paths = exp.held_paths if exp.held_paths is not None else exp.paths
            held_work = [
                (prefixes, before, after)
                for owner, before, after in self._changed_edges(ch, held=True)
                if (prefixes := own if owner == root else held_paths.get(owner))
            ]
        recontrol = self._control_may_change(exp.controlled, ch)
        gained: set[str] = set()
        if recontrol == _GROW:
            gained = self._grow_control(exp.controlled, ch.asset)
            recontrol = _NO if not gained else recontrol
        if not eff_work and not held_work and not recontrol:
            # Nothing this exposure reads moved; only the held graph's bookkeeping follows
            # the rule below (held_paths None while it would equal the effective paths).
            if not self.pending_count or not tracked:
                exp.held_paths = exp.held_stakes = None
            return _NO_FACTS, _NO_ENTITIES
        eff_old, eff_new = self._rework(asset, eff_work, held=False)
        held_old, held_new = self._rework(asset, held_work, held=True)
        targets = eff_old.keys() | eff_new.keys() | held_old.keys() | held_new.keys()
        reached = eff_new.keys() | held_new.keys()
        controlled = exp.controlled
        if recontrol == _GROW:
            targets |= gained
            reached |= gained
        elif recontrol:
            controlled = set(self.controlled_by(root))
            targets |= controlled ^ exp.controlled
            reached |= controlled
        stakes = exp.stakes
        before = {
            target: facts(exp, target)
            if meets_threshold(stakes.get(target, 0.0), threshold)
            else None
            for target in targets
        }
        # -- from here on, exp changes --
        if not self.pending_count or not tracked:
            exp.held_paths = exp.held_stakes = None  # one graph, or the held one not kept
        elif exp.held_paths is None:
            exp.held_paths, exp.held_stakes = dict(exp.paths), dict(exp.stakes)
        _swap(exp.paths, exp.stakes, eff_old, eff_new)
        if held_old or held_new:
            assert exp.held_paths is not None and exp.held_stakes is not None
            _swap(exp.held_paths, exp.held_stakes, held_old, held_new)
        if recontrol == _GROW:
            controlled.update(gained)
        exp.controlled = controlled
        added = reached - exp.touched
        if added:
            exp.touched.update(added)
        return before, added

    def _rework(
        self,
        asset: str,
        work: _Work,
        held: bool,
    ) -> tuple[dict[str, list[tuple[float, Path]]], dict[str, list[tuple[float, Path]]]]:
        """The paths through the changed holdings before the change and after it, in one
        graph: `work` lists each holding's prefixes with its counted values before and
        after. (Scanning the paths held for those through the asset was tried for rescaled
        assets: slower than walking the old ones again, docs/performance.md.)"""
        old: dict[str, list[tuple[float, Path]]] = {}
        new: dict[str, list[tuple[float, Path]]] = {}
        for prefixes, before, after in work:
            self._follow(prefixes, asset, before, after, held, old, new)
        return old, new

    def _control_may_change(self, controlled: set[str], ch: Change) -> int:
        """Whether a change to a holding in `ch.asset` can change `controlled` (the least
        set closed under "counted holdings by members > 50 %"): `_NO` only when it
        certainly cannot, `_GROW` when the set can only grow (from the asset), `_ANEW`
        when it must be found again.

        - `_NO`: the effective value did not move; or the asset's over-allocation did
          not move (its other holdings count as before) and the owner is not controlled;
          or it fell and the asset is not controlled (no member's control rested on it);
          or it rose and the asset is controlled already, or its holdings by controlled
          entities still add up to 50 % or less (the set is still closed).
        - `_GROW`: it rose and the asset's holdings by controlled entities now add up to
          more than 50 %: larger values can only grow the least closed set, which is then
          the closure of the old one (`_grow_control`) — linear in what is gained, where a
          new search would be linear in all that is controlled (a 100,000-link chain).
        - `_ANEW`: it fell and the asset is controlled; or the over-allocation moved (every
          holding in the asset counts anew) and the asset or an owner of it is controlled.
        """
        before = ch.eff_before or 0.0
        after = ch.eff_after or 0.0
        if after == before:
            return _NO
        asset = ch.asset
        if ch.eff_total_before != ch.eff_total_after:
            if asset in controlled or ch.owner in controlled:
                return _ANEW
            owners = self.owners.get(asset)
            if owners is not None and any(o in controlled for o in _members(owners)):
                return _ANEW
            return _NO
        if ch.owner not in controlled:
            return _NO
        if after < before:
            return _ANEW if asset in controlled else _NO
        if asset in controlled:
            return _NO
        return _GROW if self._held_by(controlled, asset) > 50 else _NO

    def _held_by(self, group: Container[str], asset: str) -> float:
        """The counted holdings in `asset` of the members of `group`, summed (math.fsum)."""
        owners = self.owners.get(asset)
        if owners is None:
            return 0.0
        total = self.over_eff.get(asset)
        parts = []
        for owner in _members(owners):
            if owner in group:
                pct = self.holdings[owner, asset].effective
                if pct is not None and pct > 0:
                    parts.append(counted(pct, total))
        return math.fsum(parts)

    def _grow_control(self, controlled: set[str], asset: str) -> set[str]:
        """The entities that join `controlled` now that `asset` is held > 50 % by it: the
        asset, and whatever the grown set then holds > 50 % (`controlled` is unchanged)."""
        gained = {asset}
        group = _Union(controlled, gained)
        queue = [asset]
        out = self.out
        while queue:
            row = out.get(queue.pop())
            for h in () if row is None else _members(row):
                x = h.asset
                if x in group or not h.effective:
                    continue
                if self._held_by(group, x) > 50:
                    gained.add(x)
                    queue.append(x)
        return gained

    def controlled_by(self, root: str) -> frozenset[str]:
        """Entities `root` controls: itself, and any X whose counted holdings by controlled
        entities add up to more than 50 %."""
        controlled = {root}
        contributions: dict[str, list[float]] = {}
        queue = [root]
        out = self.out
        totals = self.over_eff
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
                if totals:
                    pct = counted(pct, totals.get(x))
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

    def paths_into(self, asset: str) -> dict[str, list[tuple[float, Path]]]:
        """Every counted simple path R → … → asset, grouped by R, with the stake the forward
        walk gives it (the same bits as `exposure(R)`).

        Walked backwards from the asset, iteratively; a suffix's product is at least the
        whole path's, so pruning on it (with a little slack for rounding) never drops a
        path the forward walk keeps.
        """
        limit = self.max_holdings
        floor = self.path_floor * (1 - 1e-9)
        found: dict[str, list[tuple[float, Path]]] = {}
        reversed_path = [asset]
        on_path = {asset}
        stack: list[tuple[Iterator[tuple[str, float]], float | None]] = [
            (iter(self.counted_in(asset).items()), None)
        ]
        while stack:
            owners, suffix = stack[-1]
            for owner, pct in owners:
                if owner in on_path:
                    continue
                s = pct if suffix is None else suffix * pct / 100
                if s < floor:
                    continue
                reversed_path.append(owner)
                path = tuple(reversed(reversed_path))
                stake = self._forward_stake(path)
                if stake is not None:
                    found.setdefault(owner, []).append((stake, path))
                if len(reversed_path) <= limit:
                    on_path.add(owner)
                    stack.append((iter(self.counted_in(owner).items()), s))
                    break
                reversed_path.pop()
            else:
                stack.pop()
                if len(reversed_path) > 1:
                    on_path.discard(reversed_path.pop())
        return found

    def _forward_stake(self, path: Path) -> float | None:
        """The path's stake as the forward walk computes it, or None where it prunes it."""
        stake: float | None = None
        for owner, asset in pairwise(path):
            h = self.holdings.get((owner, asset))
            pct = None if h is None else h.effective
            if pct is None or pct <= 0:
                return None
            pct = counted(pct, self.over_eff.get(asset))
            stake = pct if stake is None else stake * pct / 100
            if stake < self.path_floor:
                return None
        return stake

    def owners_of(self, asset: str) -> dict[str, float]:
        return self.in_eff.get(asset, {})

    def holdings_of(self, owner: str) -> dict[str, float]:
        return self.out_eff.get(owner, {})


_NOT_OVER: tuple[float | None, float | None] = (None, None)
# Paths to re-walk: (prefixes ending at a changed edge's owner, its value before, after).
_Work = list[tuple[Sequence[tuple[float | None, Path]], float | None, float | None]]
_NO, _GROW, _ANEW = 0, 1, 2  # what a change can do to a controlled set


class _Union:
    """Membership in either of two sets, without building their union."""

    __slots__ = ("a", "b")

    def __init__(self, a: set[str], b: set[str]) -> None:
        self.a, self.b = a, b

    def __contains__(self, item: object) -> bool:
        return item in self.a or item in self.b


def _retotal(over: dict[str, float], asset: str, total: float) -> tuple[float | None, float | None]:
    """Record the asset's claimed `total` in one graph's over-allocation table; its
    over-allocation before and after (None while at most 100 %)."""
    before = over.get(asset)
    if total > 100:
        over[asset] = total
        return before, total
    if before is not None:
        del over[asset]
    return before, None


def _add(index: dict[str, Any], key: str, member: Holding | str) -> None:
    """Add `member` to the row of `key` (which does not hold it yet)."""
    row = index.get(key)
    if row is None:
        index[key] = member
    elif type(row) is dict:
        row[_name(member)] = member
    else:
        more = (*_members(row), member)
        index[key] = more if len(more) <= _FEW else {_name(m): m for m in more}


def _drop(index: dict[str, Any], key: str, member: Holding | str) -> None:
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
