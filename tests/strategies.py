"""Hypothesis strategies: NDJSON event streams (lists of raw lines) over a small universe.

Each stream draws its own universe (2-3 "labs" that are rivals, 1-3 "vendors", 2-4 contract
ids, out of six entities) so that collisions are frequent: chains, cycles and control in the
ownership graph, contracts reused, amended, terminated and lapsing, spend ageing out,
duplicates, stale ownership, unknown and mismatched contracts, same-party events and a
sprinkling of malformed lines. Times sit on a coarse grid (whole days, hours 0/12/23) over
more than two years, mostly moving forward and sometimes backwards, and sometimes jump exactly
onto a boundary an earlier event created (a spend's 365th day, a contract's `ends_on`), so
boundaries really happen.

Malformed lines carry one stateless defect, or two whose code decisions.md's "Order of
checks" pins, sometimes under an already applied (source, id). Streams avoid most corners
that SPEC and decisions.md leave open; those they do reach (a cancel with nothing pending
still sets the pair's stale clock, paths tied at 6 decimals) are `Reference decision:` notes
in tests/reference.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hypothesis import strategies as st

__all__ = ["ENTITIES", "Universe", "event_streams", "universes"]

ENTITIES = ("google", "meta", "openai", "scale-ai", "labelbox", "turing")
SOURCES = ("/feeds/reuters", "/erp/google")
DATA_CLASSES = ("prototypes", "user_data", "model_weights", "telemetry", "public_docs")
BASE = datetime(2024, 1, 1, tzinfo=UTC)

PERCENTS = (
    0, 0, 0, 0.005, 0.01, 0.1, 1, 5, 9.99, 10, 12.5, 20, 25, 30, 33.3, 40, 49, 50, 50, 50.5, 51,
    60, 60, 75, 99.999, 100, 100,
)  # fmt: skip
AMOUNTS = (0.005, 0.01, 1, 99.5, 1234.5678, 2500, 1_000_000, 150_000_000)

percents = st.one_of(
    st.sampled_from(PERCENTS),
    st.sampled_from(PERCENTS),
    st.sampled_from(PERCENTS),
    st.floats(0, 100, allow_nan=False),
)
amounts = st.sampled_from(AMOUNTS)
data_classes = st.lists(st.sampled_from(DATA_CLASSES), max_size=3)


@dataclass(frozen=True)
class Universe:
    labs: tuple[str, ...]
    vendors: tuple[str, ...]
    contract_ids: tuple[str, ...]

    @property
    def everyone(self) -> tuple[str, ...]:
        return self.labs + self.vendors


universes = st.builds(
    Universe,
    labs=st.integers(2, 3).map(lambda n: ENTITIES[:n]),
    vendors=st.integers(1, 3).map(lambda n: ENTITIES[3 : 3 + n]),
    contract_ids=st.integers(2, 4).map(lambda n: tuple(f"c-{i}" for i in range(1, n + 1))),
)


def _pair(draw: st.DrawFn, u: Universe, shape: str) -> tuple[str, str]:
    """Two distinct entities: lab -> vendor, vendor -> vendor, or any two."""
    if shape == "vendor-vendor" and len(u.vendors) >= 2:
        first, second = draw(st.permutations(u.vendors))[:2]
        return first, second
    if shape in ("lab-vendor", "vendor-vendor"):
        return draw(st.sampled_from(u.labs)), draw(st.sampled_from(u.vendors))
    first, second = draw(st.permutations(u.everyone))[:2]
    return first, second


def _client_vendor(draw: st.DrawFn, u: Universe) -> tuple[str, str]:
    return _pair(draw, u, draw(st.sampled_from(("lab-vendor",) * 3 + ("any",))))


@st.composite
def timestamps(draw: st.DrawFn, instant: datetime) -> tuple[str, datetime]:
    """An RFC 3339 spelling of `instant` (offsets denote the same time) and the instant it
    denotes (`.250` moves it a quarter second off the grid)."""
    spelling = draw(st.sampled_from(("Z",) * 6 + ("+02:00", "-05:00", ".000", ".250")))
    if spelling == "Z":
        return instant.strftime("%Y-%m-%dT%H:%M:%SZ"), instant
    if spelling.startswith("."):
        text = instant.strftime("%Y-%m-%dT%H:%M:%S") + spelling + "Z"
        return text, instant + timedelta(milliseconds=int(spelling[1:]))
    hours = 2 if spelling == "+02:00" else -5
    local = instant + timedelta(hours=hours)
    return local.strftime("%Y-%m-%dT%H:%M:%S") + spelling, instant


def _ends_on(draw: st.DrawFn, instant: datetime) -> str:
    return (instant.date() + timedelta(days=draw(st.integers(-10, 60)))).isoformat()


def stake_data(draw: st.DrawFn, u: Universe) -> dict[str, object]:
    shape = draw(st.sampled_from(("lab-vendor", "lab-vendor", "vendor-vendor", "any", "any")))
    owner, asset = _pair(draw, u, shape)
    data: dict[str, object] = {"owner": owner, "asset": asset, "percent": draw(percents)}
    status = draw(st.sampled_from((None, "announced", "announced", "closed", "cancelled")))
    if status is not None:
        data["status"] = status
    return data


def signed_data(draw: st.DrawFn, u: Universe, instant: datetime) -> dict[str, object]:
    client, vendor = _client_vendor(draw, u)
    data: dict[str, object] = {
        "contract_id": draw(st.sampled_from(u.contract_ids)),
        "client": client,
        "vendor": vendor,
        "category": "data-labeling",
        "data_classes": draw(data_classes),
    }
    if draw(st.booleans()):
        data["annual_value"] = draw(amounts)
    if draw(st.booleans()):
        data["ends_on"] = _ends_on(draw, instant)
    return data


def amended_data(draw: st.DrawFn, u: Universe, instant: datetime) -> dict[str, object]:
    data: dict[str, object] = {"contract_id": draw(st.sampled_from(u.contract_ids))}
    fields = draw(
        st.sets(
            st.sampled_from(("data_classes", "annual_value", "ends_on", "category")),
            min_size=1,
        )
    )
    if "data_classes" in fields:
        data["data_classes"] = draw(data_classes)
    if "annual_value" in fields:
        data["annual_value"] = draw(st.one_of(st.none(), amounts))
    if "ends_on" in fields:
        data["ends_on"] = None if draw(st.integers(0, 3)) == 0 else _ends_on(draw, instant)
    if "category" in fields:
        data["category"] = draw(st.sampled_from(("data-labeling", "evaluation")))
    return data


def spend_data(draw: st.DrawFn, u: Universe) -> dict[str, object]:
    client, vendor = _client_vendor(draw, u)
    data: dict[str, object] = {"client": client, "vendor": vendor, "amount": draw(amounts)}
    if draw(st.integers(0, 2)) == 0:
        data["contract_id"] = draw(st.sampled_from(u.contract_ids))
    return data


def rivalry_data(draw: st.DrawFn, u: Universe) -> dict[str, object]:
    # Rivals mostly among the labs, so that vendors stay vendors.
    shape = draw(st.sampled_from(("labs", "labs", "any")))
    first, second = draw(st.permutations(u.labs if shape == "labs" else u.everyone))[:2]
    data: dict[str, object] = {"a": first, "b": second}
    if draw(st.booleans()):
        data["sector"] = "frontier-ai"
    return data


Line = tuple[str, dict[str, object], int]  # (type, data, days after the burst's instant)


def motif(
    draw: st.DrawFn,
    u: Universe,
    targets: list[tuple[str, str, str]],
    uncontracted: list[tuple[str, str, str]],
    contract_id: str,
) -> list[Line]:
    """A burst of events with a shape random draws rarely produce, mostly aimed at a
    (client, vendor, rival) that earlier lines made relevant: a diamond of two equal paths
    (tie order), a cycle, a sum that lands on a threshold with or without a path pruned at
    0.01 %, control that hinges on 50 vs 51 %, a cap above 100 %, a contract that lapses on
    the next boundary, a lapsed contract revived by clearing `ends_on`, a cancel that
    makes the pair's older events stale, and spend-only activity (for a pair that never had
    a contract) that will age out."""
    if targets and draw(st.integers(0, 3)) > 0:
        client, vendor, rival = draw(st.sampled_from(targets))
    else:
        client, rival = draw(st.permutations(u.labs))[:2]
        vendor = draw(st.sampled_from(u.vendors))
    x, y = draw(st.permutations([e for e in u.everyone if e not in (rival, vendor)]))[:2]
    shape = draw(
        st.sampled_from(
            (
                *("diamond", "cycle", "threshold", "control", "cap"),
                *("lapse", "revive", "cancel", "window", "window"),
            )
        )
    )
    if shape == "window" and uncontracted:
        client, vendor, rival = draw(st.sampled_from(uncontracted))
        x, y = draw(st.permutations([e for e in u.everyone if e not in (rival, vendor)]))[:2]
    lines: list[Line] = []
    if shape == "diamond":
        a, b = draw(st.sampled_from(((50, 40), (100, 30), (25, 80), (60, 50), (20, 50))))
        edges = [(rival, x, a), (x, vendor, b), (rival, y, b), (y, vendor, a)]
    elif shape == "cycle":
        edges = [(rival, x, 60), (x, y, 50), (y, x, 50), (y, rival, 40), (y, vendor, 80)]
        edges.append((x, vendor, draw(st.sampled_from((0, 10, 20)))))
    elif shape == "threshold":
        direct = draw(st.sampled_from((9.99, 9.995, 9.9999999999, 24.99, 24.995)))
        last = draw(st.sampled_from((0.5, 0.9999, 1, 1.0001)))
        edges = [(rival, vendor, direct), (rival, x, 1), (x, vendor, last)]
    elif shape == "control":
        edges = [
            (rival, x, draw(st.sampled_from((50, 50.5, 51)))),
            (rival, vendor, 30),
            (x, vendor, draw(st.sampled_from((20, 20.5, 21)))),
        ]
    elif shape == "cap":
        edges = [(rival, vendor, 60), (rival, x, 100), (x, vendor, 70), (rival, y, 90)]
        edges.append((y, vendor, 45))
    elif shape in ("lapse", "revive"):
        # A contract whose last day is today or tomorrow (its boundary becomes a mark).
        signed = {
            "contract_id": contract_id,
            "client": client,
            "vendor": vendor,
            "category": "data-labeling",
            "data_classes": draw(data_classes),
            "ends_on": "+0" if draw(st.booleans()) else "+1",  # resolved by the caller
        }
        lines.append(("contract.signed", signed, 0))
        edges = [(rival, vendor, draw(st.sampled_from((12, 30, 60))))]
        if shape == "revive":
            later = draw(st.integers(1, 3))
            ends_on = draw(st.sampled_from((None, "+30")))
            lines.append(("entity.registered", {"id": vendor, "name": vendor.title()}, later))
            amend = {"contract_id": contract_id, "ends_on": ends_on}
            lines.append(("contract.amended", amend, later))
    elif shape == "window":
        spend = {"client": client, "vendor": vendor, "amount": draw(amounts)}
        # Recorded late (a year ago, minus a day or not) or now: it ages out soon or later.
        lines.append(("spend.recorded", spend, draw(st.sampled_from((-365, -364, 0)))))
        edges = [(rival, vendor, draw(st.sampled_from((12, 30, 60))))]
    else:  # cancel: a cancel at +1 day makes the pair's events at +0 stale afterwards
        base = {"owner": rival, "asset": vendor}
        return [
            ("ownership.stake", {**base, "percent": 30, "status": "announced"}, 0),
            ("ownership.stake", {**base, "percent": 30, "status": "cancelled"}, 1),
            ("ownership.stake", {**base, "percent": 40, "status": "closed"}, 0),
        ]
    statuses = st.sampled_from(("closed", "closed", "announced"))
    for owner, asset, percent in draw(st.permutations(edges)):
        data = {"owner": owner, "asset": asset, "percent": percent, "status": draw(statuses)}
        lines.append(("ownership.stake", data, 0))
    return lines


EVENT_KINDS = (
    ("ownership.stake",) * 10
    + ("contract.signed",) * 3
    + ("contract.amended",) * 2
    + ("contract.terminated",) * 2
    + ("spend.recorded",) * 4
    + ("rivalry.declared",) * 2
    + ("rivalry.withdrawn", "entity.registered")
)


def valid_event(draw: st.DrawFn, u: Universe, instant: datetime) -> tuple[str, dict]:
    """A well-formed (type, data); state may still reject it (stale, unknown contract...)."""
    kind = draw(st.sampled_from(EVENT_KINDS))
    if kind == "ownership.stake":
        return kind, stake_data(draw, u)
    if kind == "contract.signed":
        return kind, signed_data(draw, u, instant)
    if kind == "contract.amended":
        return kind, amended_data(draw, u, instant)
    if kind == "contract.terminated":
        return kind, {"contract_id": draw(st.sampled_from(u.contract_ids))}
    if kind == "spend.recorded":
        return kind, spend_data(draw, u)
    if kind.startswith("rivalry."):
        return kind, rivalry_data(draw, u)
    entity = draw(st.sampled_from(u.everyone))
    return kind, {"id": entity, "name": entity.title(), "aliases": [entity.upper()]}


def _dumps(envelope: object) -> bytes:
    return json.dumps(envelope, separators=(",", ":")).encode()


MAX_BYTES = 64 * 1024


def padded(envelope: dict[str, object], size: int) -> bytes:
    """The envelope with an extension attribute that makes the line exactly `size` bytes."""
    empty = len(_dumps({**envelope, "padding": ""}))
    return _dumps({**envelope, "padding": "x" * (size - empty)})


def _envelope(
    event_id: str, source: str, type_: str, time: str, data: dict[str, object]
) -> dict[str, object]:
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": source,
        "type": type_,
        "time": time,
        "data": data,
    }


CORRUPTIONS = (
    "truncated",
    "not_object",
    "not_utf8",
    "too_large",
    "missing_envelope",
    "specversion",
    "bad_id",
    "bad_time",
    "data_not_object",
    "unknown_type",
    "unknown_field",
    "missing_field",
    "bad_slug",
    "bad_percent",
    "bad_status",
    "bad_amount",
    "bad_ends_on",
    "empty_amendment",
    "same_party",
    "two_defects",
)


def corrupt(draw: st.DrawFn, u: Universe, envelope: dict, instant: datetime) -> bytes:
    """A line with one stateless defect (or two, whose code decisions.md's order of checks
    pins), built from a valid envelope."""
    kind = draw(st.sampled_from(CORRUPTIONS))
    stake = {"status": "closed", **stake_data(draw, u)}
    as_stake = {**envelope, "type": "ownership.stake"}
    if kind == "truncated":
        raw = _dumps(envelope)
        return raw[: draw(st.integers(1, len(raw) - 1))]
    if kind == "not_object":
        return draw(st.sampled_from((b"[]", b"42", b'"ownership.stake"', b"null", b"")))
    if kind == "not_utf8":
        return _dumps(envelope).replace(b'"specversion"', b'"spec\xffversion"', 1)
    if kind == "too_large":
        # Valid in every other respect: an extension attribute pads it past 64 KiB.
        return padded(envelope, draw(st.sampled_from((MAX_BYTES + 1, 70_000))))
    if kind == "missing_envelope":
        # Not `type`: whether a missing type is `schema` or `unknown_type` is not pinned.
        name = draw(st.sampled_from(("specversion", "id", "source", "time", "data")))
        return _dumps({k: v for k, v in envelope.items() if k != name})
    if kind == "specversion":
        return _dumps({**envelope, "specversion": draw(st.sampled_from(("0.3", 1.0, None)))})
    if kind == "bad_id":
        name = draw(st.sampled_from(("id", "source")))
        value = draw(st.sampled_from(("", "x" * 257, "a\nb", "a\x00b", 7)))
        return _dumps({**envelope, name: value})
    if kind == "bad_time":
        value = draw(
            st.sampled_from(
                (
                    instant.strftime("%Y-%m-%dT%H:%M:%S"),  # no offset
                    instant.strftime("%Y-%m-%d"),
                    "2025-02-30T00:00:00Z",
                    "2025-06-12T25:00:00Z",
                    "yesterday",
                    1718200000,
                )
            )
        )
        return _dumps({**envelope, "time": value})
    if kind == "data_not_object":
        return _dumps({**envelope, "data": draw(st.sampled_from(([], "x", None, 3)))})
    if kind == "unknown_type":
        return _dumps({**envelope, "type": draw(st.sampled_from(("ownership.sold", "spend")))})
    if kind == "unknown_field":
        return _dumps({**envelope, "data": {**envelope["data"], "precent": 5}})
    if kind == "missing_field":
        dropped = draw(st.sampled_from(("owner", "asset", "percent")))
        return _dumps({**as_stake, "data": {k: v for k, v in stake.items() if k != dropped}})
    if kind == "bad_slug":
        bad = draw(st.sampled_from(("Meta", "-meta", "", "m" * 129, "me ta", "meta\n", 5)))
        return _dumps({**as_stake, "data": {**stake, "owner": bad}})
    if kind == "bad_percent":
        bad = draw(st.sampled_from((-1, 100.5, 1e300, "49", True, None, [49])))
        return _dumps({**as_stake, "data": {**stake, "percent": bad}})
    if kind == "bad_status":
        bad = draw(st.sampled_from(("pending", "Closed", "", 1)))
        return _dumps({**as_stake, "data": {**stake, "status": bad}})
    if kind == "bad_amount":
        client, vendor = _client_vendor(draw, u)
        bad = draw(st.sampled_from((0, -5, 1e16, "10", False)))
        data = {"client": client, "vendor": vendor, "amount": bad}
        return _dumps({**envelope, "type": "spend.recorded", "data": data})
    if kind == "bad_ends_on":
        bad = draw(st.sampled_from(("2025-13-01", "2025-06-12T00:00:00Z", "soon", 20250612)))
        data = {"contract_id": draw(st.sampled_from(u.contract_ids)), "ends_on": bad}
        return _dumps({**envelope, "type": "contract.amended", "data": data})
    if kind == "empty_amendment":
        data = {"contract_id": draw(st.sampled_from(u.contract_ids))}
        return _dumps({**envelope, "type": "contract.amended", "data": data})
    if kind == "two_defects":  # size < JSON < type < schema < same party
        one = draw(st.sampled_from(u.everyone))
        return draw(
            st.sampled_from(
                (
                    b'{"padding":"' + b"x" * MAX_BYTES,  # too_large, not JSON either
                    _dumps({**envelope, "type": "ownership.sold", "time": "yesterday"}),
                    _dumps({**envelope, "type": "spend", "data": []}),
                    _dumps(
                        {**as_stake, "data": {**stake, "asset": stake["owner"], "percent": 101}}
                    ),
                    _dumps(
                        {
                            **envelope,
                            "type": "rivalry.declared",
                            "data": {"a": one, "b": one, "x": 1},
                        }
                    ),
                )
            )
        )
    # same_party
    one = draw(st.sampled_from(u.everyone))
    type_, data = draw(
        st.sampled_from(
            (
                ("ownership.stake", {"owner": one, "asset": one, "percent": 30}),
                ("spend.recorded", {"client": one, "vendor": one, "amount": 10}),
                ("rivalry.declared", {"a": one, "b": one}),
                (
                    "contract.signed",
                    {
                        "contract_id": "c-9",
                        "client": one,
                        "vendor": one,
                        "category": "data-labeling",
                        "data_classes": [],
                    },
                ),
            )
        )
    )
    return _dumps({**envelope, "type": type_, "data": data})


def _marks(type_: str, data: dict[str, object], at: datetime) -> list[datetime]:
    """Instants where this event's effect hits a boundary: spend leaving the 365-day window
    (exactly, and an hour before), a contract's `ends_on` (23:00 on that day, then 00:00 the
    next day)."""
    if type_ == "spend.recorded":
        return [at + timedelta(days=365), at + timedelta(days=365, hours=-1)]
    ends_on = data.get("ends_on")
    if type_ in ("contract.signed", "contract.amended") and isinstance(ends_on, str):
        last_day = datetime.fromisoformat(ends_on).replace(tzinfo=UTC)
        return [last_day + timedelta(hours=23), last_day + timedelta(days=1)]
    return []


WHAT = ("event",) * 14 + ("motif",) * 3 + ("replay", "reuse_id", "malformed", "malformed")
STEPS = ("same",) * 3 + ("forward",) * 6 + ("jump", "back", "back", "mark", "mark")


@st.composite
def event_streams(draw: st.DrawFn, max_events: int = 50, mesh: bool = False) -> list[bytes]:
    """A list of raw NDJSON lines (no trailing newline). With `mesh`, a dense web of large
    holdings follows the prelude: three to six entities each holding 40-100 % of most of the
    others, so that assets are over-allocated (SPEC v2 §2) and cycles are everywhere."""
    u = draw(universes)
    lines: list[bytes] = []
    applied_keys: list[tuple[str, str]] = []
    marks: list[datetime] = []
    rivalries: set[frozenset[str]] = set()  # declared by some line (maybe rejected later)
    clients: set[tuple[str, str]] = set()  # (client, vendor) with a contract or spend line
    contracted: set[tuple[str, str]] = set()  # (client, vendor) with a contract line

    def remember(type_: str, data: dict[str, object], at: datetime) -> None:
        nonlocal marks
        marks += _marks(type_, data, at)
        if type_ == "rivalry.declared":
            rivalries.add(frozenset((data["a"], data["b"])))
        elif type_ in ("contract.signed", "spend.recorded"):
            clients.add((data["client"], data["vendor"]))
            if type_ == "contract.signed":
                contracted.add((data["client"], data["vendor"]))

    def targets(pairs: set[tuple[str, str]]) -> list[tuple[str, str, str]]:
        """(client, vendor, rival) where the rival's holdings in the vendor could conflict."""
        found = set()
        for client, vendor in pairs:
            for pair in rivalries:
                if client in pair:
                    (rival,) = pair - {client}
                    if rival != vendor:
                        found.add((client, vendor, rival))
        return sorted(found)

    def uncontracted() -> set[tuple[str, str]]:
        return {(c, v) for c in u.labs for v in u.vendors if (c, v) not in contracted}

    # A prelude of rivalries and contracts makes conflicts likely from the start.
    prelude = [("rivalry.declared", rivalry_data(draw, u)) for _ in range(draw(st.integers(1, 3)))]
    prelude += [
        ("contract.signed", signed_data(draw, u, BASE)) for _ in range(draw(st.integers(1, 4)))
    ]
    for n, (type_, data) in enumerate(prelude):
        time, at = draw(timestamps(BASE))
        applied_keys.append((SOURCES[0], f"pre-{n}"))
        lines.append(_dumps(_envelope(f"pre-{n}", SOURCES[0], type_, time, data)))
        remember(type_, data, at)

    if mesh:
        size = draw(st.integers(min(3, len(u.everyone)), len(u.everyone)))
        members = draw(st.permutations(u.everyone))[:size]
        web = [(a, b) for a in members for b in members if a != b]
        heavy = st.sampled_from((40, 60, 90, 90, 100))
        for n, (owner, asset) in enumerate(draw(st.permutations(web))):
            if draw(st.integers(0, 4)) == 0:
                continue
            status = draw(st.sampled_from(("closed", "closed", "announced")))
            data = {"owner": owner, "asset": asset, "percent": draw(heavy), "status": status}
            time, at = draw(timestamps(BASE))
            applied_keys.append((SOURCES[0], f"mesh-{n}"))
            lines.append(_dumps(_envelope(f"mesh-{n}", SOURCES[0], "ownership.stake", time, data)))

    instant = latest = BASE
    for n in range(draw(st.integers(1, max_events))):
        step = draw(st.sampled_from(STEPS))
        latest = max(latest, instant)
        upcoming = sorted(mark for mark in marks if mark > latest)
        if step == "mark" and upcoming:
            # Exactly on a boundary ahead, often the next one (before W passes it).
            instant = upcoming[0] if draw(st.booleans()) else draw(st.sampled_from(upcoming))
        else:
            if step == "forward":
                instant += timedelta(days=draw(st.integers(1, 45)))
            elif step == "jump":
                instant += timedelta(days=draw(st.integers(100, 400)))
            elif step == "back":
                instant -= timedelta(days=draw(st.integers(1, 60)))
            instant = instant.replace(hour=draw(st.sampled_from((0, 0, 12, 23))), microsecond=0)

        what = draw(st.sampled_from(WHAT))
        if what == "replay" and lines:
            lines.append(lines[draw(st.integers(0, len(lines) - 1))])  # exact bytes again
            continue
        if what == "motif" and len(u.everyone) >= 4:
            for k, (type_, data, days) in enumerate(
                motif(draw, u, targets(clients), targets(uncontracted()), f"c-m{n}")
            ):
                at = instant + timedelta(days=days)
                for name, value in data.items():  # "+k": k days after the burst's instant
                    if isinstance(value, str) and value.startswith("+"):
                        data[name] = (instant.date() + timedelta(days=int(value))).isoformat()
                event_id = f"ev-{n}-{k}"
                time, at = draw(timestamps(at))
                applied_keys.append((SOURCES[0], event_id))
                lines.append(_dumps(_envelope(event_id, SOURCES[0], type_, time, data)))
                remember(type_, data, at)
            continue
        source, event_id = draw(st.sampled_from(SOURCES)), f"ev-{n}"
        if what == "reuse_id" and applied_keys:
            # Same (source, id) as an earlier line, other content and time.
            source, event_id = applied_keys[draw(st.integers(0, len(applied_keys) - 1))]
        type_, data = valid_event(draw, u, instant)
        time, at = draw(timestamps(instant))
        envelope = _envelope(event_id, source, type_, time, data)
        if draw(st.integers(0, 4)) == 0:
            envelope["datacontenttype"] = "application/json"
            envelope["subject"] = type_
        if what == "malformed":
            if applied_keys and draw(st.booleans()):
                # Stateless checks come first: a bad line is never a `duplicate`.
                envelope["source"], envelope["id"] = draw(st.sampled_from(applied_keys))
            lines.append(corrupt(draw, u, envelope, instant))
            continue
        applied_keys.append((source, event_id))
        if draw(st.integers(0, 40)) == 0:
            lines.append(padded(envelope, MAX_BYTES))  # exactly at the limit: accepted
        else:
            lines.append(_dumps(envelope))
        remember(type_, data, at)
    return lines
