"""Who holds how much of whom: holdings, effective stake through chains, and control (SPEC §2).

Holdings are kept twice: the *effective* graph (a pending `announced` holding counts in place
of the held one) decides stakes and control; the *held* graph (closed holdings only) tells
whether a conflict exists only through announcements. All arithmetic follows
docs/decisions.md so that every evaluation, incremental or from scratch, gives the same bits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

__all__ = ["Change", "Exposure", "Holding", "OwnershipGraph", "Path"]

Path = tuple[str, ...]


@dataclass(slots=True)
class Holding:
    """One (owner, asset) pair: the closed value, the announced one, and the last event time."""

    held: float | None = None
    pending: float | None = None
    last_time: int = 0
    held_event: str | None = None
    pending_event: str | None = None

    @property
    def effective(self) -> float | None:
        return self.pending if self.pending is not None else self.held


@dataclass(frozen=True, slots=True)
class Change:
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


class OwnershipGraph:
    """Holdings with forward and backward adjacency for both effective and held values."""

    def __init__(self, path_floor: float = 0.01) -> None:
        self.path_floor = path_floor
        self.holdings: dict[tuple[str, str], Holding] = {}
        self.out_eff: dict[str, dict[str, float]] = {}
        self.in_eff: dict[str, dict[str, float]] = {}
        self.out_held: dict[str, dict[str, float]] = {}
        self.pending_count = 0

    # -- updates -----------------------------------------------------------------------

    def last_time(self, owner: str, asset: str) -> int | None:
        h = self.holdings.get((owner, asset))
        return None if h is None else h.last_time

    def apply(
        self, owner: str, asset: str, percent: float, status: str, time: int, eid: str
    ) -> Change | None:
        """Apply one validated, non-stale ownership event; the change, if any value moved."""
        h = self.holdings.get((owner, asset))
        if h is None:
            h = self.holdings[(owner, asset)] = Holding()
        before = (h.held, h.pending)
        eff_before = h.effective
        had_pending = h.pending is not None
        if status == "announced":
            h.pending, h.pending_event = percent, eid
        elif status == "closed":
            h.held = percent if percent > 0 else None
            h.held_event = eid if percent > 0 else None
            h.pending, h.pending_event = None, None
        else:  # cancelled
            h.pending, h.pending_event = None, None
        h.last_time = time
        self.pending_count += (h.pending is not None) - had_pending
        if (h.held, h.pending) == before:
            return None
        self._set(self.out_eff, owner, asset, h.effective)
        self._set(self.in_eff, asset, owner, h.effective)
        self._set(self.out_held, owner, asset, h.held)
        return Change(owner, asset, eff_before, h.effective, before[0], h.held)

    @staticmethod
    def _set(adj: dict[str, dict[str, float]], a: str, b: str, value: float | None) -> None:
        if value is not None and value > 0:
            adj.setdefault(a, {})[b] = value
        else:
            row = adj.get(a)
            if row is not None:
                row.pop(b, None)
                if not row:
                    del adj[a]

    # -- queries -----------------------------------------------------------------------

    def exposure(self, root: str) -> Exposure:
        """Effective stakes of `root` in everything it reaches, with paths and control."""
        paths, touched = self._paths(root, self.out_eff)
        held_stakes = held_paths = None
        if self.pending_count:
            held_paths, held_touched = self._paths(root, self.out_held)
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

    def _paths(
        self, root: str, out: dict[str, dict[str, float]]
    ) -> tuple[dict[str, list[tuple[float, Path]]], set[str]]:
        """All simple paths from root whose running stake stays at or above the floor."""
        found: dict[str, list[tuple[float, Path]]] = {}
        touched = {root}
        self._walk([root], None, out, found, touched)
        return found, touched

    def _walk(
        self,
        path: list[str],
        stake: float | None,
        out: dict[str, dict[str, float]],
        found: dict[str, list[tuple[float, Path]]],
        touched: set[str],
        first: tuple[str, float | None] | None = None,
    ) -> None:
        """Extend `path` (running stake `stake`) by every simple continuation above the floor.

        `first`, when given, fixes the first step: (asset, its percentage) — used to follow
        one holding with a value other than the graph's (the value before a change).
        """
        floor = self.path_floor
        on_path = set(path)

        def walk(node: str, stake: float | None, steps) -> None:
            for nxt, pct in steps:
                if nxt in on_path or pct is None or pct <= 0:
                    continue
                s = pct if stake is None else stake * pct / 100
                if s < floor:
                    continue
                path.append(nxt)
                on_path.add(nxt)
                found.setdefault(nxt, []).append((s, tuple(path)))
                touched.add(nxt)
                walk(nxt, s, out.get(nxt, {}).items())
                on_path.discard(nxt)
                path.pop()

        steps = [first] if first is not None else out.get(path[-1], {}).items()
        walk(path[-1], stake, steps)

    def update(self, exp: Exposure, root: str, ch: Change) -> tuple[Exposure, set[str]]:
        """Re-derive `exp` after one holding changed, following only paths through it.

        Paths that reach the owner cannot use the changed holding (the owner would appear
        twice), so they are the fixed prefixes; only their continuations through the holding
        are enumerated again, with the old and with the new value. The held graph is
        followed the same way; where it was equal to the effective one (`held_paths` None),
        the effective paths before the change stand in for it.
        """
        touched = set(exp.touched)
        paths, stakes, targets = self._retarget(
            exp.paths,
            exp.stakes,
            root,
            ch.owner,
            ch.asset,
            ch.eff_before,
            ch.eff_after,
            self.out_eff,
            touched,
        )
        held_paths, held_stakes = exp.held_paths, exp.held_stakes
        if not self.pending_count:
            held_paths = held_stakes = None  # no announcement anywhere: one graph
        else:
            if held_paths is None:
                held_paths, held_stakes = exp.paths, exp.stakes  # held == effective before
            if ch.held_before != ch.held_after:
                held_paths, held_stakes, held_targets = self._retarget(
                    held_paths,
                    held_stakes or {},
                    root,
                    ch.owner,
                    ch.asset,
                    ch.held_before,
                    ch.held_after,
                    self.out_held,
                    touched,
                )
                targets |= held_targets
        controlled = exp.controlled
        if ch.owner in controlled:
            controlled = self.controlled_by(root)
            targets |= controlled ^ exp.controlled
            touched |= controlled
        new = Exposure(paths, stakes, held_stakes, held_paths, controlled, frozenset(touched))
        return new, targets

    def _retarget(self, paths, stakes, root, owner, asset, before, after, out, touched):
        """Swap the paths through (owner, asset) at value `before` for those at `after`."""
        if owner == root:
            prefixes: list[tuple[float | None, Path]] = [(None, (root,))]
        else:
            prefixes = list(paths.get(owner, ()))  # type: ignore[arg-type]
        old_through: dict[str, list[tuple[float, Path]]] = {}
        new_through: dict[str, list[tuple[float, Path]]] = {}
        scratch: set[str] = set()
        for stake, prefix in prefixes:
            self._walk(list(prefix), stake, out, old_through, scratch, first=(asset, before))
            self._walk(list(prefix), stake, out, new_through, touched, first=(asset, after))
        targets = old_through.keys() | new_through.keys()
        paths, stakes = dict(paths), dict(stakes)
        for target in targets:
            gone = {p for _, p in old_through.get(target, ())}
            kept = [sp for sp in paths.get(target, ()) if sp[1] not in gone]
            kept.extend(new_through.get(target, ()))
            if kept:
                paths[target] = kept
                stakes[target] = min(100.0, math.fsum(s for s, _ in kept))
            else:
                paths.pop(target, None)
                stakes.pop(target, None)
        return paths, stakes, set(targets)

    def controlled_by(self, root: str) -> frozenset[str]:
        """Entities `root` controls: itself, and any X held > 50 % by controlled entities."""
        controlled = {root}
        contributions: dict[str, list[float]] = {}
        queue = [root]
        while queue:
            y = queue.pop()
            for x, pct in self.out_eff.get(y, {}).items():
                if x in controlled:
                    continue
                parts = contributions.setdefault(x, [])
                parts.append(pct)
                if math.fsum(parts) > 50:
                    controlled.add(x)
                    queue.append(x)
        return frozenset(controlled)

    def owners_of(self, asset: str) -> dict[str, float]:
        return dict(self.in_eff.get(asset, {}))

    def holdings_of(self, owner: str) -> dict[str, float]:
        return dict(self.out_eff.get(owner, {}))
