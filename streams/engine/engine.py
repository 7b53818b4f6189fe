"""The exposure engine: typed events in, alert records out — pure, incremental, replayable.

No Kafka, no clock, no I/O: "now" is the watermark, the largest event time applied. The one
rule that needs the wall clock (`future`: dated more than a day after the event is read)
takes the reading as an argument from the adapter that read the event. Each
event marks what it can have changed (client–vendor pairs, one rival's exposure, a rivalry),
and only those conflicts are re-evaluated; the diff against the open set is the output.
The worker, `stakewatch backtest` and the offline queries drive this one class through the
ledger (ledger.py); the API reads it.
"""

from __future__ import annotations

import pickle
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

from streams.engine.config import EngineConfig
from streams.engine.ownership import Change, Exposure, OwnershipGraph, facts
from streams.engine.records import AlertRecord, Figures, by_value, format_micros
from streams.engine.relationships import DAY_US, Contract, Relationships
from streams.engine.rules import judged_stake, meets_threshold, shown_spend, shown_stake
from streams.events import Event, Rejection, RejectionCode
from streams.events.fast import Data, Flat, decode_flat, flatten

__all__ = ["Allocation", "Engine", "OpenConflict", "Outcome"]

SNAPSHOT_VERSION = 3  # 3: over-allocation totals in the graph; 2: the compact state layout
FUTURE_TOLERANCE_US = DAY_US  # SPEC §2: `future` is more than one day after the reading


class Allocation(NamedTuple):
    """An asset entering (`over` True) or leaving over-allocation (SPEC §2), with the totals
    its holdings claim in the effective and the held graph."""

    asset: str
    over: bool
    claimed: float
    claimed_held: float


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one event did: the alert records it caused, or why it was not applied; and the
    assets whose over-allocation it changed, for the adapters to report."""

    records: tuple[AlertRecord, ...] = ()
    rejection: Rejection | None = None
    allocations: tuple[Allocation, ...] = ()

    @property
    def applied(self) -> bool:
        return self.rejection is None


_NOTHING = Outcome()  # immutable: shared by every event that applied and caused no record


class Applied:
    """The (source, id) of every applied event: exact idempotency, no digest, no false hits.

    A set of ids per source rather than one set of joined keys: the source is not repeated
    per event, and the id is the string the event came with (a contract's signing event
    shares it), where a joined key was one more string per event.
    """

    __slots__ = ("by_source",)

    def __init__(self) -> None:
        self.by_source: dict[str, set[str]] = {}

    def __contains__(self, key: tuple[str, str]) -> bool:
        ids = self.by_source.get(key[0])
        return ids is not None and key[1] in ids

    def add(self, source: str, eid: str) -> None:
        ids = self.by_source.get(source)
        if ids is None:
            ids = self.by_source[source] = set()
        ids.add(eid)

    def __len__(self) -> int:
        return sum(map(len, self.by_source.values()))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Applied) and self.by_source == other.by_source

    __hash__ = None  # type: ignore[assignment]  # mutable


@dataclass(frozen=True, slots=True)
class OpenConflict:
    client: str
    vendor: str
    rival: str
    severity: str
    since_event: str
    since_time: str

    def __reduce__(self) -> tuple[type[OpenConflict], tuple[Any, ...]]:
        return by_value(self)


Pairs = set[tuple[str, str]]
Triples = set[tuple[str, str, str]]
_Memo = dict[tuple[str, str], tuple[list[Contract] | None, bool]]


class Engine:
    """Exposure state and open conflicts; `apply` one event at a time, in read order."""

    def __init__(self, config: EngineConfig | None = None) -> None:
        self.config = config or EngineConfig()
        self.graph = OwnershipGraph(self.config.path_floor, self.config.max_path_holdings)
        self.rel = Relationships(self.config.spend_window_days)
        self.rivals: dict[str, dict[str, str | None]] = {}  # entity -> rival -> sector
        self.entities: dict[str, tuple[str, ...]] = {}  # id -> (name, *aliases): one tuple
        self.identifiers: dict[str, tuple[tuple[str, str], ...]] = {}  # id -> (scheme, id)s
        self.identified: dict[tuple[str, str], str] = {}  # (scheme, id) -> the entity id
        self.seen = Applied()
        self.watermark: int | None = None
        self.open: dict[str, OpenConflict] = {}
        self.open_by_rival: dict[str, set[str]] = {}
        self.stats: Counter[str] = Counter()
        self._exposures: dict[str, Exposure] = {}
        self._readers: dict[str, set[str]] = {}
        self._open_pairs: dict[tuple[str, str], set[str]] = {}  # (client, vendor) -> rivals
        self._allocations: list[Allocation] = []  # this event's, for its Outcome
        # Keep the held graph's paths in every exposure only where a rule reads `pending`;
        # otherwise held stakes are computed when a record or a query prints them (once per
        # rival and ownership change), and an ownership event walks one graph, not two.
        self._track_held = self.config.severity.reads("pending")
        self._held_cache: dict[str, tuple[int, dict[str, float] | None]] = {}
        self._ownership_changes = 0  # the held cache's clock

    # -- entry points --------------------------------------------------------------------

    def process(self, raw: bytes, now: int | None = None) -> Outcome:
        """Decode and apply one raw record, read at wall-clock `now` (microseconds since the
        epoch; None: no `future` check, as for what-ifs and the tests' reference).

        Records of the common shapes skip the models (streams/events/fast.py: a subset of
        what `decode` accepts, decoded to the same values); everything else, and so every
        bad record, goes through `decode`.
        """
        flat = decode_flat(raw)
        if isinstance(flat, Rejection):
            return self.reject(flat)
        return self.apply_flat(flat, now)

    def apply_flat(self, flat: Flat, now: int | None = None) -> Outcome:
        """Apply one event in flat form (`fast_decode` / `flatten`), read at `now`: the
        worker decodes itself, so that it can also hand the flat event to the provenance
        table."""
        etype, source, eid, t, data = flat
        if etype == "spend.recorded":  # `_apply`, one call shorter for most of a stream
            ids = self.seen.by_source.get(source)
            if ids is not None and eid in ids:
                detail = f"event ({source}, {eid}) already applied"
                return self.reject(Rejection(RejectionCode.DUPLICATE, detail))
            if now is not None and t > now + FUTURE_TOLERANCE_US:
                return self.reject(_future(t, now))
            return self._spend(source, ids, eid, t, data)
        return self._apply(etype, source, eid, t, data, now)

    def apply(self, event: Event, now: int | None = None) -> Outcome:
        """Apply one validated event read at `now`; state-level bad input comes back as a
        rejection."""
        return self._apply(*flatten(event), now)

    def _apply(
        self, etype: str, source: str, eid: str, t: int, data: Data, now: int | None = None
    ) -> Outcome:
        """Apply one event in flat form (streams/events/fast.py)."""
        if (source, eid) in self.seen:
            return self.reject(
                Rejection(RejectionCode.DUPLICATE, f"event ({source}, {eid}) already applied")
            )
        if now is not None and t > now + FUTURE_TOLERANCE_US:
            return self.reject(_future(t, now))
        if etype == "spend.recorded":
            return self._spend(source, self.seen.by_source.get(source), eid, t, data)
        rejection = self._check(etype, data, t)
        if rejection is not None:
            return self.reject(rejection)
        self.seen.add(source, eid)
        self.stats["applied"] += 1
        previous = self.watermark
        if previous is None or t > previous:
            self.watermark = t
        pairs: Pairs = set()
        triples: Triples = set()
        _HANDLERS[etype](self, eid, t, data, pairs, triples)
        if previous is None or t > previous:
            pairs |= self.rel.lapses(t)
        return self._finish(pairs, triples, eid, t)

    def _spend(self, source: str, ids: set[str] | None, eid: str, t: int, data: Data) -> Outcome:
        """`spend.recorded`, most of any stream: checks, apply and lapses without detours
        (`ids`: the ids applied from `source` so far, as the duplicate check found them)."""
        client, vendor, amount, cid = data
        rel = self.rel
        if cid is not None:
            contract = rel.contracts.get(cid)
            if contract is None:
                detail = f"no contract {cid!r} was signed"
                return self.reject(Rejection(RejectionCode.UNKNOWN_CONTRACT, detail))
            if contract.client != client or contract.vendor != vendor:
                return self.reject(
                    Rejection(
                        RejectionCode.CONTRACT_MISMATCH,
                        f"contract {cid!r} is between {contract.client} and {contract.vendor}",
                    )
                )
        if ids is not None:
            ids.add(eid)  # `seen.add`, one lookup fewer
        else:
            self.seen.add(source, eid)
        self.stats["applied"] += 1
        previous = self.watermark
        moved = previous is None or t > previous
        now = t if moved or previous is None else previous
        if moved:
            self.watermark = t
        activated = rel.add_spend(client, vendor, t, amount, now)
        lapsed = rel.lapses(now) if moved else None
        if not activated and not lapsed:
            return _NOTHING  # nothing evaluated, so no exposure cached: none to forget
        pairs: Pairs = set(lapsed) if lapsed else set()
        if activated:
            pairs.add((client, vendor))
        return self._finish(pairs, set(), eid, t)

    def _finish(self, pairs: Pairs, triples: Triples, eid: str, t: int) -> Outcome:
        records = self._evaluate(pairs, triples, eid, t) if pairs or triples else ()
        if len(self._exposures) > len(self.rivals):
            self._forget_unwatched()
        if self._allocations:
            allocations = tuple(self._allocations)
            self._allocations.clear()
            return Outcome(records=records, allocations=allocations)
        return Outcome(records=records) if records else _NOTHING

    def reject(self, rejection: Rejection) -> Outcome:
        """The outcome of an event not applied (counted in ``stats``)."""
        self.stats[f"rejected:{rejection.code.value}"] += 1
        return Outcome(rejection=rejection)

    def _check(self, etype: str, data: Data, t: int) -> Rejection | None:
        if etype == "ownership.stake":
            owner, asset = data[0], data[1]
            last = self.graph.last_time(owner, asset)
            if last is not None and t < last:
                return Rejection(RejectionCode.STALE, f"{owner}->{asset} has a newer event applied")
            return None
        if etype == "contract.signed":
            if data[0] in self.rel.contracts:
                return Rejection(RejectionCode.CONTRACT_EXISTS, f"contract {data[0]!r} exists")
            return None
        if etype in ("contract.amended", "contract.terminated"):
            cid = data[0]
            if cid not in self.rel.contracts:
                return Rejection(RejectionCode.UNKNOWN_CONTRACT, f"no contract {cid!r} was signed")
        if etype == "entity.registered":
            entity = data[0]
            for pair in data[3]:
                holder = self.identified.get(pair)
                if holder is not None and holder != entity:
                    return Rejection(
                        RejectionCode.IDENTIFIER_CLASH,
                        f"{pair[0]} {pair[1]!r} already names {holder!r}",
                    )
        return None

    # -- handlers (state changes; each marks what it may have changed) --------------------

    def _on_stake(self, eid: str, t: int, data: Data, pairs: Pairs, triples: Triples) -> None:
        owner, asset, percent, status = data
        graph = self.graph
        change = graph.apply(owner, asset, percent, status, t)
        if change is None:
            return
        self._ownership_changes += 1
        readers = self._readers
        roots = readers.get(owner, ())
        if change.rescaled:
            # every holding in the asset counts anew: whoever reads one of its owners
            was, now = change.overallocation
            if was != now:
                self._allocations.append(
                    Allocation(asset, now, graph.claimed(asset), graph.claimed(asset, held=True))
                )
            roots = set(roots)
            for other in graph.counted_in(asset).keys() | graph.counted_in(asset, held=True):
                roots |= readers.get(other, set())
        for root in sorted(roots):
            self._refresh_exposure(root, change, triples)

    def _on_signed(self, eid: str, t: int, data: Data, pairs: Pairs, triples: Triples) -> None:
        cid, client, vendor, category, data_classes, annual_value, ends_on = data
        self.rel.sign(
            Contract(
                contract_id=cid,
                client=client,
                vendor=vendor,
                category=category,
                data_classes=tuple(dict.fromkeys(data_classes)),
                annual_value=annual_value,
                ends_on=ends_on,
                signed_event=eid,
            )
        )
        pairs.add((client, vendor))

    def _on_amended(self, eid: str, t: int, data: Data, pairs: Pairs, triples: Triples) -> None:
        cid, changes = data
        contract = self.rel.contracts[cid]
        changes = dict(changes)
        if "data_classes" in changes:
            changes["data_classes"] = tuple(dict.fromkeys(changes["data_classes"]))
        self.rel.amend(contract, changes)
        contract.later_events = (*contract.later_events, eid)
        pairs.add((contract.client, contract.vendor))

    def _on_terminated(self, eid: str, t: int, data: Data, pairs: Pairs, triples: Triples) -> None:
        contract = self.rel.contracts[data[0]]
        if not contract.terminated:
            contract.terminated = True
            contract.later_events = (*contract.later_events, eid)
            pairs.add((contract.client, contract.vendor))

    def _on_rivalry(self, eid: str, t: int, data: Data, pairs: Pairs, triples: Triples) -> None:
        a, b, sector = data
        if b in self.rivals.get(a, {}):
            return
        self.rivals.setdefault(a, {})[b] = sector
        self.rivals.setdefault(b, {})[a] = sector
        for client, rival in ((a, b), (b, a)):
            exposure = self._exposure(rival)
            for vendor in exposure.paths:
                if self.config.meets_threshold(exposure.stake(vendor)):
                    triples.add((client, vendor, rival))

    def _on_withdrawn(self, eid: str, t: int, data: Data, pairs: Pairs, triples: Triples) -> None:
        a, b, _ = data
        if b not in self.rivals.get(a, {}):
            return
        for x, y in ((a, b), (b, a)):
            del self.rivals[x][y]
            if not self.rivals[x]:
                del self.rivals[x]
            for key in self.open_by_rival.get(y, ()):
                c = self.open[key]
                if c.client == x:
                    triples.add((c.client, c.vendor, c.rival))

    def _on_entity(self, eid: str, t: int, data: Data, pairs: Pairs, triples: Triples) -> None:
        """Registering again replaces the name, the aliases and the identifiers (SPEC v2 §1;
        `_check` refused an identifier that names another entity)."""
        entity, name, aliases, identifiers = data
        entity = sys.intern(entity)
        self.entities[entity] = (name, *aliases)
        for pair in self.identifiers.pop(entity, ()):
            del self.identified[pair]
        if identifiers:
            self.identifiers[entity] = identifiers
            for pair in identifiers:
                self.identified[pair] = entity

    # -- exposure cache ---------------------------------------------------------------------

    def _exposure(self, root: str) -> Exposure:
        exposure = self._exposures.get(root)
        if exposure is None:
            exposure = self._exposures[root] = self.graph.exposure(root, self._track_held)
            for entity in exposure.touched:
                self._readers.setdefault(entity, set()).add(root)
        return exposure

    def _drop_exposure(self, root: str) -> Exposure | None:
        old = self._exposures.pop(root, None)
        if old is not None:
            for entity in old.touched:
                readers = self._readers[entity]
                readers.discard(root)
                if not readers:
                    del self._readers[entity]
        return old

    def _refresh_exposure(self, root: str, change: Change, triples: Triples) -> None:
        """Bring one rival's exposure up to date and mark the conflicts it can have changed."""
        rivals = self.rivals.get(root)
        exposure = self._exposures.get(root)
        if not rivals or exposure is None:
            self._drop_exposure(root)
            return
        threshold = self.config.threshold
        before, added = self.graph.update(exposure, root, change, threshold)
        for entity in added:
            self._readers.setdefault(entity, set()).add(root)
        stakes = exposure.stakes
        for vendor, old in before.items():
            # skip when no conflict exists either way, or nothing a conflict reads moved
            if old is None:
                if not meets_threshold(stakes.get(vendor, 0.0), threshold):
                    continue
            elif old == facts(exposure, vendor):
                continue
            clients = self.rel.clients_of(vendor)
            for client in rivals:
                if client in clients:
                    triples.add((client, vendor, root))

    def _forget_unwatched(self) -> None:
        """Drop exposures computed for entities that have (or no longer have) no rival."""
        if len(self._exposures) > len(self.rivals):
            for root in [r for r in self._exposures if r not in self.rivals]:
                self._drop_exposure(root)

    # -- evaluation -----------------------------------------------------------------------

    def _evaluate(
        self, pairs: Pairs, triples: Triples, eid: str, t: int
    ) -> tuple[AlertRecord, ...]:
        rivals = self.rivals
        exposures = self._exposures
        open_pairs = self._open_pairs
        # below `low`, round(stake, 9) < threshold for certain (the rounding moves < 1e-9)
        low = self.config.threshold - 1e-6
        for client, vendor in pairs:
            open_rivals = open_pairs.get((client, vendor), ())
            for rival in rivals.get(client, ()):
                exposure = exposures.get(rival)
                if (
                    exposure is not None
                    and exposure.stakes.get(vendor, 0.0) < low
                    and rival not in open_rivals
                ):
                    continue  # no conflict now (`_severity_now` would say None), none open
                triples.add((client, vendor, rival))
        records = []
        memo: _Memo = {}
        for client, vendor, rival in triples:
            record = self._transition(client, vendor, rival, eid, t, memo)
            if record is not None:
                records.append(record)
        if len(records) > 1:
            records.sort(key=lambda r: r.dedup_key)
        return tuple(records)

    def _transition(
        self, client: str, vendor: str, rival: str, eid: str, t: int, memo: _Memo
    ) -> AlertRecord | None:
        severity = self._severity_now(client, vendor, rival, memo)
        if severity is None and not self.open_by_rival.get(rival):
            return None  # no conflict now, and none of this rival's is open
        key = f"{client}|{vendor}|{rival}"
        before = self.open.get(key)
        if severity is None and before is None:
            return None
        if severity is not None and before is not None and severity == before.severity:
            return None
        if severity is None:
            assert before is not None
            del self.open[key]
            self.open_by_rival[rival].discard(key)
            if not self.open_by_rival[rival]:
                del self.open_by_rival[rival]
            open_rivals = self._open_pairs[(client, vendor)]
            open_rivals.discard(rival)
            if not open_rivals:
                del self._open_pairs[(client, vendor)]
            return self._record(
                key, "resolved", before.severity, client, vendor, rival, eid, t, memo
            )
        if before is None:
            since_event, since_time = eid, format_micros(t)
        else:
            since_event, since_time = before.since_event, before.since_time
        self.open[key] = OpenConflict(client, vendor, rival, severity, since_event, since_time)
        self.open_by_rival.setdefault(rival, set()).add(key)
        self._open_pairs.setdefault((client, vendor), set()).add(rival)
        return self._record(key, "firing", severity, client, vendor, rival, eid, t, memo)

    def _relationship(
        self, client: str, vendor: str, memo: _Memo
    ) -> tuple[list[Contract] | None, bool]:
        """The pair's active contracts (None: not active) and whether they carry a sensitive
        class, at the watermark; `memo` keeps them for the rest of one event's evaluation
        (the rivals of one client share them)."""
        found = memo.get((client, vendor))
        if found is None:
            assert self.watermark is not None
            contracts = self.rel.activity(client, vendor, self.watermark)
            classes = self.config.sensitive_data_classes
            sensitive = contracts is not None and any(
                dc in classes for c in contracts for dc in c.data_classes
            )
            found = memo[(client, vendor)] = (contracts, sensitive)
        return found

    def _severity_now(
        self, client: str, vendor: str, rival: str, memo: _Memo | None = None
    ) -> str | None:
        """The conflict's severity at the watermark, or None when there is no conflict.

        Cheapest test first: most (client, vendor, rival) triples an event touches have no
        stake at all; only those at or above the threshold look at the relationship.
        """
        if vendor in (client, rival) or rival not in self.rivals.get(client, ()):
            return None
        exposure = self._exposure(rival)
        stake = judged_stake(exposure.stakes.get(vendor, 0.0))
        threshold = self.config.threshold
        if not meets_threshold(stake, threshold):
            return None
        contracts, sensitive = self._relationship(client, vendor, {} if memo is None else memo)
        if contracts is None:
            return None  # the relationship is not active
        # `pending` only where a rule reads it (else its held stake is not kept)
        pending = self._track_held and not meets_threshold(exposure.held_stake(vendor), threshold)
        return self.config.severity.classify_values(
            stake, vendor in exposure.controlled, sensitive, pending
        )

    def _record(
        self,
        key: str,
        status: str,
        severity: str,
        client: str,
        vendor: str,
        rival: str,
        eid: str,
        t: int,
        memo: _Memo,
    ) -> AlertRecord:
        contracts = self._relationship(client, vendor, memo)[0] or ()
        f = self.figures(client, vendor, rival, self._exposure(rival), contracts)
        return AlertRecord(key, status, severity, client, vendor, rival, *f, eid, format_micros(t))

    # -- queries used by adapters -------------------------------------------------------------

    def figures(
        self,
        client: str,
        vendor: str,
        rival: str,
        exposure: Exposure | None = None,
        contracts: Iterable[Contract] | None = None,
    ) -> Figures:
        """The (client, vendor, rival) figures at the watermark, rounded as SPEC §3 prints them.

        The one place they are computed: alert records and the read-only queries (API,
        ``explain``, what-if) both call it, so a query never disagrees with the alert it
        explains. `exposure` and `contracts` let a caller pass what it already holds.
        """
        now = self.watermark
        if exposure is None:
            exposure = self._read_exposure(rival)
        if contracts is None:
            contracts = () if now is None else self.rel.active_contracts(client, vendor, now)
        contracts = tuple(contracts)
        shown = sorted(
            ((shown_stake(s), p) for s, p in exposure.paths.get(vendor, ())),
            key=lambda sp: (-sp[0], sp[1]),
        )
        stake, controlled, pending = self._stake_figures(rival, exposure, vendor)
        return Figures(
            stake=stake,
            controlled=controlled,
            pending=pending,
            paths=tuple((p, s) for s, p in shown),
            active_contracts=tuple(c.contract_id for c in contracts),
            data_classes=tuple(sorted({dc for c in contracts for dc in c.data_classes})),
            spend_365d=self.spend_365d(client, vendor),
        )

    def resolved_record(
        self, client: str, vendor: str, rival: str, severity: str, event_id: str, event_time: str
    ) -> AlertRecord:
        """A ``resolved`` record for a conflict this engine does not hold open — one the
        alerts topic still shows firing after a replay (streams/agents/reconcile.py): the
        figures at the watermark, as every resolved record carries them."""
        key = f"{client}|{vendor}|{rival}"
        figures = self.figures(client, vendor, rival)
        return AlertRecord(
            key, "resolved", severity, client, vendor, rival, *figures, event_id, event_time
        )

    def headline(self, client: str, vendor: str, rival: str) -> tuple[float, bool, bool, float]:
        """A conflict's stake, controlled, pending and spend_365d at the watermark, as
        `figures` gives them, without the paths and contracts: what the dashboards refresh
        every second for every open conflict (figures that move without a transition)."""
        return (
            *self._stake_figures(rival, self._read_exposure(rival), vendor),
            self.spend_365d(client, vendor),
        )

    def _stake_figures(
        self, rival: str, exposure: Exposure, vendor: str
    ) -> tuple[float, bool, bool]:
        held = self._held_stakes(rival, exposure)
        return (
            shown_stake(exposure.stake(vendor)),
            vendor in exposure.controlled,
            not self.config.meets_threshold(
                exposure.stake(vendor) if held is None else held.get(vendor, 0.0)
            ),
        )

    def _held_stakes(self, root: str, exposure: Exposure) -> dict[str, float] | None:
        """`root`'s stakes in the held graph (None: equal to the effective ones), from the
        exposure where it keeps them, else computed once per ownership change."""
        if exposure.held_tracked:
            return exposure.held_stakes
        cached = self._held_cache.get(root)
        if cached is None or cached[0] != self._ownership_changes:
            cached = self._held_cache[root] = (
                self._ownership_changes,
                self.graph.held_stakes_of(root),
            )
        return cached[1]

    def _read_exposure(self, root: str) -> Exposure:
        """The cached exposure itself (never changed by the readers here), or one computed
        for an entity no rival's exposure covers."""
        cached = self._exposures.get(root)
        return cached if cached is not None else self.graph.exposure(root)

    def spend_365d(self, client: str, vendor: str) -> float:
        """The pair's spend_365d at the watermark, rounded as alert records print it (alone:
        spend moves without a transition, and the worker refreshes it for the dashboards)."""
        now = self.watermark
        return 0.0 if now is None else shown_spend(self.rel.spend_365d(client, vendor, now))

    @property
    def today(self) -> int | None:
        return None if self.watermark is None else self.watermark // DAY_US

    def exposure_of(self, root: str) -> Exposure:
        """Exposure of any entity (computed on demand, not cached for non-rivals).

        A copy: the cached exposures are updated in place as holdings change.
        """
        cached = self._exposures.get(root)
        if cached is None:
            return self.graph.exposure(root)
        held = self._held_stakes(root, cached)
        return Exposure(
            dict(cached.paths),
            dict(cached.stakes),
            None if held is None else dict(held),
            None if cached.held_paths is None else dict(cached.held_paths),
            set(cached.controlled),
            set(cached.touched),
        )

    def keep_clients(self, clients: frozenset[str]) -> None:
        """Forget every other client: relationships, open conflicts, applied event ids.

        For a copy that answers a scoped caller's what-if (streams/query/whatif.py): with the
        others gone, no rejection (``unknown_contract``, ``duplicate``) or figure can tell
        that another client's contract or event exists. Market state stays."""
        self.rel.keep_clients(clients)
        self.open = {k: c for k, c in self.open.items() if c.client in clients}
        self.open_by_rival = {}
        self._open_pairs = {}
        for key, c in self.open.items():
            self.open_by_rival.setdefault(c.rival, set()).add(key)
            self._open_pairs.setdefault((c.client, c.vendor), set()).add(c.rival)
        self.seen = Applied()

    # -- snapshots --------------------------------------------------------------------------

    def snapshot(self) -> bytes:
        """The whole state as bytes; `restore` with the same config gives an equal engine."""
        state = {k: getattr(self, k) for k in _STATE}
        return pickle.dumps((SNAPSHOT_VERSION, state), protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def restore(cls, blob: bytes, config: EngineConfig | None = None) -> Engine:
        """The engine `snapshot` wrote; a ValueError for a snapshot of another state layout
        (the caller replays the events instead)."""
        try:
            version, state = pickle.loads(blob)
        except Exception as exc:  # e.g. classes whose fields have changed since
            raise ValueError(f"snapshot cannot be read: {exc!r}") from exc
        if version != SNAPSHOT_VERSION:
            raise ValueError(
                f"snapshot version {version} is not {SNAPSHOT_VERSION} (another state layout)"
            )
        engine = cls(config)
        if set(state) != set(_STATE):
            raise ValueError("snapshot holds other fields than this engine's state")
        for name, value in state.items():
            setattr(engine, name, value)
        engine._intern_ids()
        return engine

    def _intern_ids(self) -> None:
        """Make the ids a snapshot restored the interned ones, so that the events to come
        name each entity with the same string object (the state interns ids as it goes)."""
        intern = sys.intern
        for entity in self.entities:
            intern(entity)
        for keys in (self.graph.holdings, self.rel.pairs):
            for a, b in keys:
                intern(a)
                intern(b)


# set by __init__ (from the config, or empty): not state
_FROM_CONFIG = ("config", "_track_held", "_held_cache")
# the state a snapshot holds: every other attribute __init__ sets (named, not read from
# __dict__, so that a compiled engine, which has none, snapshots the same fields)
_STATE = (
    "graph",
    "rel",
    "rivals",
    "entities",
    "identifiers",
    "identified",
    "seen",
    "watermark",
    "open",
    "open_by_rival",
    "stats",
    "_exposures",
    "_readers",
    "_open_pairs",
    "_allocations",
    "_ownership_changes",
)


def _future(t: int, now: int) -> Rejection:
    ahead = (t - now) / DAY_US
    return Rejection(
        RejectionCode.FUTURE, f"time is {ahead:.1f} days after the clock when read (limit 1 day)"
    )


_HANDLERS = {
    "ownership.stake": Engine._on_stake,
    "contract.signed": Engine._on_signed,
    "contract.amended": Engine._on_amended,
    "contract.terminated": Engine._on_terminated,
    "rivalry.declared": Engine._on_rivalry,
    "rivalry.withdrawn": Engine._on_withdrawn,
    "entity.registered": Engine._on_entity,
}
