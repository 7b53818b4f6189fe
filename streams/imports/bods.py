"""BODS 0.4 statements → `entity.registered` and `ownership.stake` events.

docs/ingest.md states every mapping decision; in short:

- **Parties.** Entity and person records become `entity.registered` (name, other names as
  aliases, identifiers whose scheme is an org-id.guide code). A record whose identifier a
  known entity carries lands on that entity's id and registers nothing (the known
  registration stands); otherwise it gets a stable slug (`identity.Directory`).
- **Holdings.** Only `shareholding` interests are holdings: the sum of a relationship's
  current direct (or `unknown`) shareholdings is `percent`, `closed`, at the statement's
  date. A range counts as its lower bound (an exclusive minimum plus 0.000001: "more than
  50 %" is a majority); a share with no lower bound is not known. Ended interests, a
  `closed` record, and a relationship whose shareholdings all ended are exits (0). Later
  statements of a record supersede earlier ones through the engine's event-time order.
- **Indirect interests are never counted twice.** The primary relationship that aggregates
  `componentRecords` gives no edge of its own for its indirect figure when components are
  present: the components carry it. Where some component shares are unknown, they are
  derived — one value `u` for all of them, such that the components give exactly the stated
  figure — and emitted as the components' holdings. Where the components cannot reach the
  figure (missing, or too small even at 100 %), the rest becomes a direct holding, said in
  the report. Without components, the indirect figure is the holding.
- **Everything else** (trust and control roles, unspecified owners, unknown parties,
  closed parties, invalid statements) becomes no event, each reported with its reason.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from streams.events import Rejection, decode
from streams.imports.bods_validate import Statement, schema_errors
from streams.imports.identity import Directory, Identifier, slugify

__all__ = ["BodsResult", "convert"]

EXCLUSIVE_STEP = 0.000001  # above an exclusive minimum: the published figures' precision
TOLERANCE = 1e-6  # percent: a stated figure and the one computed agree within this
_SCHEME = re.compile(r"[A-Z0-9]+(?:-[A-Z0-9]+)+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_PERSON_KINDS: dict[object, str] = {
    "anonymousPerson": "Anonymous person",
    "unknownPerson": "Unknown person",
}


@dataclass
class BodsResult:
    events: list[bytes] = field(default_factory=list)
    report: list[dict[str, Any]] = field(default_factory=list)
    statements: int = 0
    invalid: int = 0
    parties: dict[str, str] = field(default_factory=dict)  # recordId -> entity id

    def count(self, kind: str) -> int:
        return sum(1 for r in self.report if r["kind"] == kind)


@dataclass
class _Party:
    entity: str
    person: bool
    registers: bool  # this import owns the registration (not a known or shared entity)


@dataclass
class _Edge:
    owner: str
    asset: str
    value: float | None  # None: a holding whose share is not known
    statement: Statement


def convert(
    statements: Iterable[Statement], directory: Directory, source: str = "/import/bods"
) -> BodsResult:
    """Every statement as events, or as a report entry saying why not (never both silent)."""
    return _Conversion(directory, source).run(list(statements))


class _Conversion:
    def __init__(self, directory: Directory, source: str) -> None:
        self.directory = directory
        self.source = source
        self.result = BodsResult()
        self._out: list[tuple[int, int, int, bytes]] = []  # (time, phase, seq, event)
        self._seq = itertools.count()
        self.parties: dict[str, _Party] = {}
        self.edges: dict[str, _Edge] = {}  # relationship recordId -> its latest edge
        self.emitted: dict[str, tuple[str, str]] = {}  # relationship recordId -> pair held
        self.derived: dict[str, list[tuple[str, str]]] = {}  # primary recordId -> edges
        self.derived_value: dict[tuple[str, str], tuple[float, str]] = {}
        self.unresolved: dict[tuple[str, str], Statement] = {}  # unknown-share components

    # -- driver ---------------------------------------------------------------------------

    def run(self, statements: list[Statement]) -> BodsResult:
        r = self.result
        r.statements = len(statements)
        valid: list[tuple[int, int, Statement]] = []
        for order, s in enumerate(statements):
            errors = schema_errors(s.doc)
            if errors:
                r.invalid += 1
                more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
                self.say(s, "invalid", "schema", errors[0] + more)
                continue
            valid.append((_when(s.doc), order, s))
        valid.sort(key=lambda t: (t[0], t[1]))
        for when, _, s in valid:
            if s.doc["recordType"] in ("entity", "person"):
                self.party(s, when)
        for when, _, s in valid:
            if s.doc["recordType"] == "relationship":
                self.relationship(s, when)
        for (owner, asset), s in self.unresolved.items():
            self.say(
                s,
                "skipped",
                "no_share",
                f"{owner} -> {asset}: a component holding with no share, and no indirect "
                "statement it serves gives one",
            )
        self._out.sort()
        r.events = [raw for *_, raw in self._out]
        r.parties = {rid: p.entity for rid, p in self.parties.items()}
        return r

    def say(self, s: Statement, kind: str, code: str, reason: str) -> None:
        self.result.report.append({**s.locate(), "kind": kind, "code": code, "reason": reason})

    def emit(self, s: Statement, when: int, phase: int, eid: str, etype: str, data: dict) -> None:
        event = {
            "specversion": "1.0",
            "id": eid,
            "source": self.source,
            "type": etype,
            "time": _format(when),
            "data": data,
        }
        raw = orjson.dumps(event)
        checked = decode(raw)
        if isinstance(checked, Rejection):  # an input no mapping rule foresaw: said, not lost
            self.say(s, "skipped", "invalid_event", f"the event it maps to is bad: {checked}")
            return
        self._out.append((when, phase, next(self._seq), raw))

    # -- entities and persons ---------------------------------------------------------------

    def party(self, s: Statement, when: int) -> None:
        doc = s.doc
        rid, details = doc["recordId"], doc["recordDetails"]
        person = doc["recordType"] == "person"
        name, aliases = _names(details, person, rid)
        identifiers = _identifiers(details)
        closed = doc["recordStatus"] == "closed"
        known = self.parties.get(rid)
        if known is None:
            match, others = self.directory.match(identifiers)
            if others:
                self.say(
                    s,
                    "note",
                    "identity_clash",
                    f"its identifiers name {', '.join([match or '', *others])}: landed on {match}",
                )
            if match is not None:
                outside = match in self.directory.known
                self.parties[rid] = _Party(match, person, registers=False)
                self.say(
                    s,
                    "skipped",
                    "matched" if outside else "same_entity",
                    f"lands on {'the known entity' if outside else 'entity'} {match} by "
                    f"identifier; {'its registration stands' if outside else 'registered once'}",
                )
                return
            key = _key(identifiers, doc, rid)
            entity = self.directory.assign(slugify(name, "person" if person else "entity"), key)
            self.directory.claim(entity, name, identifiers)
            known = self.parties[rid] = _Party(entity, person, registers=True)
        if closed:
            self.say(
                s,
                "skipped",
                "closed_party",
                f"{known.entity}: a closed record registers nothing (its holdings end with "
                "their own relationship statements)",
            )
            return
        if not known.registers:
            self.say(s, "skipped", "matched", f"lands on {known.entity}; its registration stands")
            return
        kept = []
        for pair in identifiers:
            holder = self.directory.by_identifier.get(pair, known.entity)
            if holder != known.entity:
                self.say(s, "note", "identity_clash", f"{pair[0]} {pair[1]} already names {holder}")
                continue
            self.directory.by_identifier[pair] = known.entity
            kept.append({"scheme": pair[0], "id": pair[1]})
        data: dict[str, Any] = {"id": known.entity, "name": name}
        if aliases:
            data["aliases"] = aliases
        if kept:
            data["identifiers"] = kept
        self.emit(s, when, 0, doc["statementId"], "entity.registered", data)

    # -- relationships ----------------------------------------------------------------------

    def relationship(self, s: Statement, when: int) -> None:
        doc = s.doc
        rid, details, sid = doc["recordId"], doc["recordDetails"], doc["statementId"]
        subject, party = details.get("subject"), details.get("interestedParty")
        if isinstance(party, dict):
            reason = party.get("reason", "unspecified")
            self.say(s, "skipped", "unspecified_party", f"interested party unspecified: {reason}")
            return
        for role, ref in (("subject", subject), ("interested party", party)):
            if not isinstance(ref, str) or ref not in self.parties:
                self.say(s, "skipped", "unknown_party", f"{role} {ref!r} is no record in the input")
                return
        asset, owner = self.parties[subject].entity, self.parties[party].entity
        if self.parties[subject].person:
            self.say(s, "skipped", "not_entity", f"subject {asset} is a person: nobody owns it")
            return
        if owner == asset:
            self.say(s, "skipped", "same_party", f"both parties land on {asset}")
            return
        previous = self.emitted.get(rid)
        if previous is not None and previous != (owner, asset):  # the parties changed
            self.stake(s, when, f"{sid}/previous", *previous, 0.0)
            del self.emitted[rid]
        interests = [i for i in details.get("interests") or [] if isinstance(i, dict)]
        component = bool(details.get("isComponent"))
        if doc["recordStatus"] == "closed":
            self.edges.pop(rid, None)
            self.unresolved.pop((owner, asset), None)
            self.withdraw_derived(s, when, rid)
            derived = self.derived_value.pop((owner, asset), None)  # a link's derived share
            if previous is not None or _shareholdings(interests) or derived is not None:
                self.stake(s, when, sid, owner, asset, 0.0, rid)
            else:
                self.say(s, "skipped", "closed", "a closed relationship with no holding to end")
            return
        holdings = _shareholdings(interests)
        others = sorted({str(i.get("type")) for i in interests if i not in holdings})
        ownerish = [i for i in interests if i.get("type") in (None, "unknownInterest")]
        if not holdings:
            if component and ownerish:  # a link of a chain whose share is not given
                self.edges[rid] = _Edge(owner, asset, None, s)
                self.unresolved.setdefault((owner, asset), s)
                return
            self.say(
                s,
                "skipped",
                "not_shareholding",
                f"no shareholding interest ({', '.join(others) or 'none given'}): control, "
                "trust and other roles are not holdings",
            )
            if previous is not None:
                self.stake(s, when, sid, owner, asset, 0.0, rid)
            return
        current = [i for i in holdings if not _ended(i, when)]
        if not current:
            self.edges[rid] = _Edge(owner, asset, 0.0, s)
            self.say(s, "note", "ended", "every shareholding interest has ended: an exit")
            self.stake(s, when, sid, owner, asset, 0.0, rid)
            return
        direct = [i for i in current if i.get("directOrIndirect") != "indirect"]
        indirect = [i for i in current if i.get("directOrIndirect") == "indirect"]
        direct_values = [_share(i) for i in direct]
        indirect_values = [_share(i) for i in indirect]
        known_direct = math.fsum(v for v in direct_values if v is not None)
        if component:
            value = known_direct if None not in direct_values or not direct_values else None
            self.edges[rid] = _Edge(owner, asset, value, s)
            if value is None:
                self.unresolved.setdefault((owner, asset), s)
                return
            self.unresolved.pop((owner, asset), None)
            self.stake(s, when, sid, owner, asset, value, rid)
            return
        total = known_direct
        if indirect:
            stated = math.fsum(v for v in indirect_values if v is not None)
            if None in indirect_values and stated == 0:
                self.say(s, "note", "no_share", "an indirect interest with no share")
            elif details.get("componentRecords"):
                total += self.indirect(s, when, rid, owner, asset, stated, details)
            else:
                total += stated  # nothing else carries the figure
        if not direct and total == 0 and indirect and details.get("componentRecords"):
            self.say(s, "note", "via_components", "the indirect figure is carried by components")
            if previous is not None:
                self.stake(s, when, sid, owner, asset, 0.0, rid)
            return
        if None in direct_values and known_direct == 0 and not indirect:
            self.say(s, "skipped", "no_share", "a shareholding with no share (or no lower bound)")
            return
        if total > 100:
            self.say(s, "note", "over_100", f"its interests add up to {total} %: counted as 100")
            total = 100.0
        self.stake(s, when, sid, owner, asset, total, rid)

    def stake(
        self,
        s: Statement,
        when: int,
        eid: str,
        owner: str,
        asset: str,
        percent: float,
        rid: str | None = None,
    ) -> None:
        data = {"owner": owner, "asset": asset, "percent": percent, "status": "closed"}
        self.emit(s, when, 1, eid, "ownership.stake", data)
        if rid is not None:
            self.emitted[rid] = (owner, asset)

    # -- indirect interests -----------------------------------------------------------------

    def indirect(
        self,
        s: Statement,
        when: int,
        rid: str,
        owner: str,
        asset: str,
        stated: float,
        details: dict,
    ) -> float:
        """Emit the derived shares of the primary's unknown components; return what the
        components cannot carry (added to the direct holding; 0 when they can)."""
        refs = [r for r in details["componentRecords"] if isinstance(r, str)]
        edges = [self.edges[r] for r in refs if r in self.edges]
        missing = [r for r in refs if r not in self.edges and r not in self.parties]
        if missing:
            self.say(s, "note", "components_missing", f"not in the input: {', '.join(missing)}")
        known = {(e.owner, e.asset): e.value for e in edges if e.value is not None}
        unknown = {(e.owner, e.asset): e for e in edges if e.value is None}
        # the chain of holdings must not include the primary's own pair
        known.pop((owner, asset), None)
        unknown.pop((owner, asset), None)

        def through(u: float) -> float:
            graph = {**known, **{pair: u for pair in unknown}}
            return _stake(graph, owner, asset)

        self.withdraw_derived(s, when, rid, keep=set(unknown))
        if not unknown:
            got = through(0.0)
            if abs(got - stated) > TOLERANCE:
                self.say(
                    s,
                    "note",
                    "indirect_mismatch",
                    f"its components give {got:.6f} %, it states {stated} %: the components count",
                )
            return 0.0 if got > 0 else stated
        low, high = through(0.0), through(100.0)
        if stated <= low + TOLERANCE:
            self.say(
                s,
                "note",
                "indirect_mismatch",
                f"its known components already give {low:.6f} % of the stated {stated} %: "
                "the components with no share stay unknown",
            )
            return 0.0
        rest = 0.0
        if stated > high + TOLERANCE:
            u = 100.0
            rest = stated - high
            self.say(
                s,
                "note",
                "indirect_remainder",
                f"its components give at most {high:.6f} % of the stated {stated} %: "
                f"the other {rest:.6f} % is a direct holding",
            )
        else:
            u = _solve(through, stated)
        derived = []
        for pair, edge in sorted(unknown.items()):
            before = self.derived_value.get(pair)
            if before is not None and before[1] != rid and abs(before[0] - u) > TOLERANCE:
                self.say(
                    s,
                    "note",
                    "indirect_conflict",
                    f"{pair[0]} -> {pair[1]} was derived as {before[0]:.6f} % from another "
                    f"statement, now {u:.6f} %: the later one counts",
                )
            self.derived_value[pair] = (u, rid)
            self.unresolved.pop(pair, None)
            eid = f"{s.doc['statementId']}/{edge.statement.doc['statementId']}"
            self.stake(s, when, eid, pair[0], pair[1], u)
            derived.append(pair)
        self.derived[rid] = derived
        return rest

    def withdraw_derived(
        self, s: Statement, when: int, rid: str, keep: set[tuple[str, str]] | None = None
    ) -> None:
        """A primary closed (or re-stated without them): exit the shares derived from it."""
        for pair in self.derived.pop(rid, []):
            if keep is not None and pair in keep:
                continue
            if self.derived_value.get(pair, (0, rid))[1] == rid:
                self.derived_value.pop(pair, None)
                self.stake(s, when, f"{s.doc['statementId']}/withdrawn/{pair[0]}", *pair, 0.0)


# -- values ---------------------------------------------------------------------------------


def _when(doc: dict) -> int:
    """The statement's date (required in BODS 0.4) as event time, µs since the epoch."""
    text = doc["statementDate"]
    if len(text) == 10:
        moment = dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)
    else:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    return (moment - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1)


def _format(micros: int) -> str:
    moment = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=micros)
    return moment.strftime(
        "%Y-%m-%dT%H:%M:%SZ" if not moment.microsecond else "%Y-%m-%dT%H:%M:%S.%fZ"
    )


def _day(text: object) -> int | None:
    if not isinstance(text, str):
        return None
    try:
        return _when({"statementDate": text[:10]})
    except ValueError:
        return None


def _ended(interest: dict, when: int) -> bool:
    end = _day(interest.get("endDate"))
    return end is not None and end <= when


def _shareholdings(interests: list[dict]) -> list[dict]:
    return [i for i in interests if i.get("type") == "shareholding"]


def _share(interest: dict) -> float | None:
    """The share as one figure: exact, else the lower bound (exclusive: + 0.000001), else
    not known."""
    share = interest.get("share")
    if not isinstance(share, dict):
        return None
    for name, step in (("exact", 0.0), ("minimum", 0.0), ("exclusiveMinimum", EXCLUSIVE_STEP)):
        value = share.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return min(100.0, float(value) + step)
    return None


def _stake(graph: dict[tuple[str, str], float], owner: str, asset: str) -> float:
    """S(owner, asset) over `graph` as the engine sums it: simple paths, products in percent
    (docs/decisions.md, Arithmetic), without the floor (chains here are short)."""
    out: dict[str, list[tuple[str, float]]] = {}
    for (a, b), value in graph.items():
        out.setdefault(a, []).append((b, value))
    found: list[float] = []
    stack: list[tuple[str, float, frozenset[str]]] = [(owner, 100.0, frozenset({owner}))]
    while stack:
        node, carried, seen = stack.pop()
        for nxt, value in out.get(node, ()):
            if nxt in seen:
                continue
            s = value if node == owner else carried * value / 100
            if nxt == asset:
                found.append(s)
            else:
                stack.append((nxt, s, seen | {nxt}))
    return min(100.0, math.fsum(found))


def _solve(through, stated: float) -> float:
    """The u in (0, 100] with through(u) = stated: exact when every path holds one unknown
    share (through is then linear in u), else by bisection (through only grows with u)."""
    low, high = through(0.0), through(100.0)
    u = (stated - low) * 100 / (high - low)
    if abs(through(u) - stated) <= 1e-9:
        return u
    a, b = 0.0, 100.0
    for _ in range(200):
        mid = (a + b) / 2
        if through(mid) < stated:
            a = mid
        else:
            b = mid
    return b


def _text(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    text = " ".join(_CONTROL.sub(" ", value).split())
    return text[:256] or None


def _names(details: dict, person: bool, rid: str) -> tuple[str, list[str]]:
    names: list[str] = []
    if person:
        given = [n for n in details.get("names") or [] if isinstance(n, dict)]
        order: dict[object, int] = {"legal": 0, "individual": 1}
        for n in sorted(given, key=lambda n: order.get(n.get("type"), 2)):
            full = _text(n.get("fullName")) or _text(
                " ".join(
                    str(n[k]) for k in ("givenName", "familyName") if isinstance(n.get(k), str)
                )
            )
            if full:
                names.append(full)
        if not names:
            reason = (details.get("unspecifiedPersonDetails") or {}).get("reason")
            kind = _PERSON_KINDS.get(details.get("personType"), "Person")
            names.append(f"{kind} {rid}" + (f" ({reason})" if reason else ""))
    else:
        name = _text(details.get("name"))
        if name:
            names.append(name)
        names += [t for a in details.get("alternateNames") or [] if (t := _text(a))]
        if not names:
            names.append(f"entity {rid}")
    unique = list(dict.fromkeys(names))
    return unique[0], unique[1:65]


def _identifiers(details: dict) -> list[Identifier]:
    out: list[Identifier] = []
    for item in details.get("identifiers") or []:
        if not isinstance(item, dict):
            continue
        scheme, value = item.get("scheme"), _text(item.get("id"))
        if isinstance(scheme, str) and value:
            scheme = scheme.strip().upper()
            if 2 <= len(scheme) <= 32 and _SCHEME.fullmatch(scheme):
                pair = (scheme, value)
                if pair not in out:
                    out.append(pair)
    return out[:64]


def _key(identifiers: list[Identifier], doc: dict, rid: str) -> str:
    """What a new id's digest is made from: the LEI, else another identifier, else the
    publisher and record id (stable for the publisher: BODS requires it)."""
    if identifiers:
        scheme, value = min(identifiers, key=lambda p: (p[0] != "XI-LEI", p))
        return f"id:{scheme}:{value}"
    publisher = (doc.get("publicationDetails") or {}).get("publisher") or {}
    who = publisher.get("name") or publisher.get("url") or ""
    return f"record:{who}:{rid}"
