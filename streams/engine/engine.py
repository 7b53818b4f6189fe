"""The exposure engine: typed events in, alert records out — pure, incremental, replayable.

No Kafka, no clock, no I/O: "now" is the watermark, the largest event time applied. Each
event marks what it can have changed (client–vendor pairs, one rival's exposure, a rivalry),
and only those conflicts are re-evaluated; the diff against the open set is the output.
The faust agents, `stakewatch backtest` and the API all drive this one class.
"""

from __future__ import annotations

import datetime as dt
import pickle
from collections import Counter
from dataclasses import dataclass, field

from streams.engine.config import EngineConfig, Facts
from streams.engine.ownership import Change, Exposure, OwnershipGraph
from streams.engine.records import AlertRecord, format_time
from streams.engine.relationships import DAY_US, Contract, Relationships
from streams.events import (
    ContractAmended,
    ContractSigned,
    ContractTerminated,
    EntityRegistered,
    Event,
    OwnershipStake,
    Rejection,
    RivalryDeclared,
    RivalryWithdrawn,
    SpendRecorded,
    decode,
)

__all__ = ["Engine", "OpenConflict", "Outcome"]

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_EPOCH_DAY = dt.date(1970, 1, 1).toordinal()
SNAPSHOT_VERSION = 1


def to_micros(t: dt.datetime) -> int:
    return (t - _EPOCH) // dt.timedelta(microseconds=1)


def to_day(d: dt.date | None) -> int | None:
    return None if d is None else d.toordinal() - _EPOCH_DAY


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one event did: the alert records it caused, or why it was not applied."""

    records: tuple[AlertRecord, ...] = ()
    rejection: Rejection | None = None

    @property
    def applied(self) -> bool:
        return self.rejection is None


@dataclass(frozen=True, slots=True)
class OpenConflict:
    client: str
    vendor: str
    rival: str
    severity: str
    since_event: str
    since_time: str


@dataclass(slots=True)
class _Dirty:
    pairs: set[tuple[str, str]] = field(default_factory=set)
    triples: set[tuple[str, str, str]] = field(default_factory=set)


class Engine:
    """Exposure state and open conflicts; `apply` one event at a time, in read order."""

    def __init__(self, config: EngineConfig | None = None) -> None:
        self.config = config or EngineConfig()
        self.graph = OwnershipGraph(self.config.path_floor)
        self.rel = Relationships(self.config.spend_window_days)
        self.rivals: dict[str, dict[str, str | None]] = {}  # entity -> rival -> sector
        self.entities: dict[str, tuple[str, tuple[str, ...]]] = {}
        self.seen: set[str] = set()
        self.watermark: int | None = None
        self.open: dict[str, OpenConflict] = {}
        self.open_by_rival: dict[str, set[str]] = {}
        self.stats: Counter[str] = Counter()
        self._exposures: dict[str, Exposure] = {}
        self._readers: dict[str, set[str]] = {}

    # -- entry points --------------------------------------------------------------------

    def process(self, raw: bytes) -> Outcome:
        """Decode and apply one raw record."""
        event = decode(raw)
        if isinstance(event, Rejection):
            return self._reject(event)
        return self.apply(event)

    def apply(self, event: Event) -> Outcome:
        """Apply one validated event; state-level bad input comes back as a rejection."""
        key = f"{event.source}\x1f{event.id}"
        if key in self.seen:
            detail = f"event ({event.source}, {event.id}) already applied"
            return self._reject(Rejection("duplicate", detail))
        t = to_micros(event.time)
        rejection = self._check(event, t)
        if rejection is not None:
            return self._reject(rejection)
        self.seen.add(key)
        self.stats["applied"] += 1
        dirty = _Dirty()
        previous = self.watermark
        if previous is None or t > previous:
            self.watermark = t
        now = self.watermark
        _HANDLERS[event.type](self, event, t, dirty)
        if previous is None or now > previous:
            dirty.pairs |= self.rel.lapses(now)
        records = self._evaluate(dirty, event)
        self._forget_unwatched()
        return Outcome(records=records)

    def _reject(self, rejection: Rejection) -> Outcome:
        self.stats[f"rejected:{rejection.code}"] += 1
        return Outcome(rejection=rejection)

    def _check(self, event: Event, t: int) -> Rejection | None:
        if isinstance(event, OwnershipStake):
            last = self.graph.last_time(event.data.owner, event.data.asset)
            if last is not None and t < last:
                d = event.data
                return Rejection("stale", f"{d.owner}->{d.asset} has a newer event applied")
            return None
        if isinstance(event, ContractSigned):
            if event.data.contract_id in self.rel.contracts:
                return Rejection("contract_exists", f"contract {event.data.contract_id!r} exists")
            return None
        if not isinstance(event, ContractAmended | ContractTerminated | SpendRecorded):
            return None
        cid = event.data.contract_id
        if cid is None:
            return None
        contract = self.rel.contracts.get(cid)
        if contract is None:
            return Rejection("unknown_contract", f"no contract {cid!r} was signed")
        if isinstance(event, SpendRecorded) and (
            contract.client != event.data.client or contract.vendor != event.data.vendor
        ):
            return Rejection(
                "contract_mismatch",
                f"contract {cid!r} is between {contract.client} and {contract.vendor}",
            )
        return None

    # -- handlers (state changes; each marks what it may have changed) --------------------

    def _on_stake(self, e: OwnershipStake, t: int, dirty: _Dirty) -> None:
        d = e.data
        change = self.graph.apply(d.owner, d.asset, d.percent, d.status, t, e.id)
        if change is None:
            return
        for root in sorted(self._readers.get(d.owner, ())):
            self._refresh_exposure(root, change, dirty)

    def _on_signed(self, e: ContractSigned, t: int, dirty: _Dirty) -> None:
        d = e.data
        self.rel.sign(
            Contract(
                contract_id=d.contract_id,
                client=d.client,
                vendor=d.vendor,
                category=d.category,
                data_classes=tuple(dict.fromkeys(d.data_classes)),
                annual_value=d.annual_value,
                ends_on=to_day(d.ends_on),
                signed_event=e.id,
                events=[e.id],
            )
        )
        dirty.pairs.add((d.client, d.vendor))

    def _on_amended(self, e: ContractAmended, t: int, dirty: _Dirty) -> None:
        d = e.data
        contract = self.rel.contracts[d.contract_id]
        changes = {k: getattr(d, k) for k in d.model_fields_set if k != "contract_id"}
        if "ends_on" in changes:
            changes["ends_on"] = to_day(changes["ends_on"])
        if "data_classes" in changes:
            changes["data_classes"] = tuple(dict.fromkeys(changes["data_classes"]))
        self.rel.amend(contract, changes)
        contract.events.append(e.id)
        dirty.pairs.add((contract.client, contract.vendor))

    def _on_terminated(self, e: ContractTerminated, t: int, dirty: _Dirty) -> None:
        contract = self.rel.contracts[e.data.contract_id]
        if not contract.terminated:
            contract.terminated = True
            contract.events.append(e.id)
            dirty.pairs.add((contract.client, contract.vendor))

    def _on_spend(self, e: SpendRecorded, t: int, dirty: _Dirty) -> None:
        d = e.data
        if self.rel.add_spend(d.client, d.vendor, t, d.amount, self.watermark):
            dirty.pairs.add((d.client, d.vendor))

    def _on_rivalry(self, e: RivalryDeclared, t: int, dirty: _Dirty) -> None:
        a, b = e.data.a, e.data.b
        if b in self.rivals.get(a, {}):
            return
        self.rivals.setdefault(a, {})[b] = e.data.sector
        self.rivals.setdefault(b, {})[a] = e.data.sector
        for client, rival in ((a, b), (b, a)):
            exposure = self._exposure(rival)
            for vendor in exposure.paths:
                if round(exposure.stake(vendor), 9) >= self.config.threshold:
                    dirty.triples.add((client, vendor, rival))

    def _on_withdrawn(self, e: RivalryWithdrawn, t: int, dirty: _Dirty) -> None:
        a, b = e.data.a, e.data.b
        if b not in self.rivals.get(a, {}):
            return
        for x, y in ((a, b), (b, a)):
            del self.rivals[x][y]
            if not self.rivals[x]:
                del self.rivals[x]
            for key in self.open_by_rival.get(y, ()):
                c = self.open[key]
                if c.client == x:
                    dirty.triples.add((c.client, c.vendor, c.rival))

    def _on_entity(self, e: EntityRegistered, t: int, dirty: _Dirty) -> None:
        self.entities[e.data.id] = (e.data.name, tuple(e.data.aliases))

    # -- exposure cache ---------------------------------------------------------------------

    def _exposure(self, root: str) -> Exposure:
        exposure = self._exposures.get(root)
        if exposure is None:
            exposure = self._exposures[root] = self.graph.exposure(root)
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

    def _refresh_exposure(self, root: str, change: Change, dirty: _Dirty) -> None:
        """Bring one rival's exposure up to date and mark the conflicts it can have changed."""
        rivals = self.rivals.get(root)
        old = self._exposures.get(root)
        if not rivals or old is None:
            self._drop_exposure(root)
            return
        new, candidates = self.graph.update(old, root, change)
        self._exposures[root] = new
        for entity in new.touched - old.touched:
            self._readers.setdefault(entity, set()).add(root)
        threshold = self.config.threshold
        for vendor in candidates:
            before, after = _facts(old, vendor), _facts(new, vendor)
            if before == after or max(before[0], after[0]) < threshold:
                continue  # nothing a conflict depends on moved, or no conflict either way
            clients = self.rel.clients_of(vendor)
            for client in rivals:
                if client in clients:
                    dirty.triples.add((client, vendor, root))

    def _forget_unwatched(self) -> None:
        """Drop exposures computed for entities that have (or no longer have) no rival."""
        if len(self._exposures) > len(self.rivals):
            for root in [r for r in self._exposures if r not in self.rivals]:
                self._drop_exposure(root)

    # -- evaluation -----------------------------------------------------------------------

    def _evaluate(self, dirty: _Dirty, event: Event) -> tuple[AlertRecord, ...]:
        triples = dirty.triples
        for client, vendor in dirty.pairs:
            for rival in self.rivals.get(client, ()):
                triples.add((client, vendor, rival))
        records = []
        for client, vendor, rival in triples:
            record = self._transition(client, vendor, rival, event)
            if record is not None:
                records.append(record)
        records.sort(key=lambda r: r.dedup_key)
        return tuple(records)

    def _transition(self, client: str, vendor: str, rival: str, event: Event):
        key = f"{client}|{vendor}|{rival}"
        severity = self._severity_now(client, vendor, rival)
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
            return self._record(key, "resolved", before.severity, client, vendor, rival, event)
        since = before or OpenConflict(
            client, vendor, rival, severity, event.id, format_time(event.time)
        )
        self.open[key] = OpenConflict(
            client, vendor, rival, severity, since.since_event, since.since_time
        )
        self.open_by_rival.setdefault(rival, set()).add(key)
        return self._record(key, "firing", severity, client, vendor, rival, event)

    def _severity_now(self, client: str, vendor: str, rival: str) -> str | None:
        """The conflict's severity at the watermark, or None when there is no conflict."""
        if vendor in (client, rival) or rival not in self.rivals.get(client, {}):
            return None
        now = self.watermark
        assert now is not None
        if not self.rel.is_active(client, vendor, now):
            return None
        exposure = self._exposure(rival)
        stake = round(exposure.stake(vendor), 9)
        threshold = self.config.threshold
        if stake < threshold:
            return None
        contracts = self.rel.active_contracts(client, vendor, now)
        sensitive = any(
            dc in self.config.sensitive_data_classes for c in contracts for dc in c.data_classes
        )
        facts = Facts(
            stake=stake,
            controlled=vendor in exposure.controlled,
            sensitive=sensitive,
            pending=round(exposure.held_stake(vendor), 9) < threshold,
        )
        return self.config.severity.classify(facts)

    def _record(self, key, status, severity, client, vendor, rival, event) -> AlertRecord:
        now = self.watermark
        assert now is not None
        exposure = self._exposure(rival)
        shown = ((round(s, 6), p) for s, p in exposure.paths.get(vendor, ()))
        paths = sorted(shown, key=lambda sp: (-sp[0], sp[1]))
        contracts = self.rel.active_contracts(client, vendor, now)
        return AlertRecord(
            dedup_key=key,
            status=status,
            severity=severity,
            client=client,
            vendor=vendor,
            rival=rival,
            stake=round(exposure.stake(vendor), 6),
            controlled=vendor in exposure.controlled,
            pending=round(exposure.held_stake(vendor), 9) < self.config.threshold,
            paths=tuple((p, s) for s, p in paths),
            active_contracts=tuple(c.contract_id for c in contracts),
            data_classes=tuple(sorted({dc for c in contracts for dc in c.data_classes})),
            spend_365d=round(self.rel.spend_365d(client, vendor, now), 2),
            event_id=event.id,
            event_time=format_time(event.time),
        )

    # -- queries used by adapters -------------------------------------------------------------

    @property
    def today(self) -> int | None:
        return None if self.watermark is None else self.watermark // DAY_US

    def exposure_of(self, root: str) -> Exposure:
        """Exposure of any entity (computed on demand, not cached for non-rivals)."""
        return self._exposures.get(root) or self.graph.exposure(root)

    # -- snapshots --------------------------------------------------------------------------

    def snapshot(self) -> bytes:
        """The whole state as bytes; `restore` with the same config gives an equal engine."""
        state = {k: v for k, v in self.__dict__.items() if k != "config"}
        return pickle.dumps((SNAPSHOT_VERSION, state), protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def restore(cls, blob: bytes, config: EngineConfig | None = None) -> Engine:
        version, state = pickle.loads(blob)
        if version != SNAPSHOT_VERSION:
            raise ValueError(f"snapshot version {version} is not {SNAPSHOT_VERSION}")
        engine = cls(config)
        engine.__dict__.update(state)
        return engine


def _facts(exposure: Exposure, vendor: str) -> tuple[float, bool, float]:
    """What a conflict's existence and severity read from one exposure."""
    return (
        round(exposure.stake(vendor), 9),
        vendor in exposure.controlled,
        round(exposure.held_stake(vendor), 9),
    )


_HANDLERS = {
    "ownership.stake": Engine._on_stake,
    "contract.signed": Engine._on_signed,
    "contract.amended": Engine._on_amended,
    "contract.terminated": Engine._on_terminated,
    "spend.recorded": Engine._on_spend,
    "rivalry.declared": Engine._on_rivalry,
    "rivalry.withdrawn": Engine._on_withdrawn,
    "entity.registered": Engine._on_entity,
}
