"""A deliberately simple, from-scratch evaluation of SPEC.md and docs/decisions.md.

The property tests compare the incremental engine against this module, line by line. It
shares no code with `streams`: it parses with plain `json` and hand-written checks, keeps the
applied events' effects as plain dicts and lists, and after every applied event recomputes
every conflict from nothing (all simple paths by brute-force DFS, control by a naive fixed
point), then diffs against the conflicts that were open before. Speed is not a goal.

Where SPEC.md and decisions.md leave a choice open, the choice made here is marked
`Reference decision:` so that it can be checked against the engine's.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone

__all__ = ["DEFAULT_SENSITIVE_CLASSES", "EVENT_TYPES", "Reference"]

DEFAULT_SENSITIVE_CLASSES = frozenset(
    {
        "prototypes",
        "internal_documents",
        "confidential_data",
        "model_weights",
        "source_code",
        "user_data",
    }
)
EVENT_TYPES = frozenset(
    {
        "ownership.stake",
        "contract.signed",
        "contract.amended",
        "contract.terminated",
        "spend.recorded",
        "rivalry.declared",
        "rivalry.withdrawn",
        "entity.registered",
    }
)

MAX_RECORD_BYTES = 64 * 1024
MAX_MONEY = 1e15
PRUNE_BELOW = 0.01
MAX_PATH_HOLDINGS = 16
MICROS_PER_DAY = 86_400 * 1_000_000
SPEND_WINDOW = 365 * MICROS_PER_DAY
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# re.fullmatch everywhere: `$` would also accept a trailing newline. [0-9] rather than \d,
# which also matches non-ASCII digits.
SLUG = re.compile(r"[a-z0-9][a-z0-9._-]{0,127}")
TIMESTAMP = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.([0-9]+))?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)
FULL_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")

ENVELOPE_FIELDS = ("specversion", "id", "source", "type", "time", "data")

# type -> (required data fields, optional data fields)
DATA_FIELDS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "ownership.stake": (frozenset({"owner", "asset", "percent"}), frozenset({"status"})),
    "contract.signed": (
        frozenset({"contract_id", "client", "vendor", "category", "data_classes"}),
        frozenset({"annual_value", "ends_on"}),
    ),
    "contract.amended": (
        frozenset({"contract_id"}),
        frozenset({"data_classes", "annual_value", "ends_on", "category"}),
    ),
    "contract.terminated": (frozenset({"contract_id"}), frozenset()),
    "spend.recorded": (frozenset({"client", "vendor", "amount"}), frozenset({"contract_id"})),
    "rivalry.declared": (frozenset({"a", "b"}), frozenset({"sector"})),
    "rivalry.withdrawn": (frozenset({"a", "b"}), frozenset({"sector"})),
    "entity.registered": (frozenset({"id", "name"}), frozenset({"aliases", "identifiers"})),
}


class Rejected(Exception):
    """Raised inside `Reference.feed` with a decisions.md rejection code."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


# --------------------------------------------------------------------------- validation


def _schema(detail: str) -> Rejected:
    return Rejected("schema", detail)


def _json_constant(name: str) -> float:
    # Reference decision: the literals NaN / Infinity / -Infinity are not JSON (RFC 8259),
    # so a line containing them is `invalid_json`, not `schema`.
    raise ValueError(f"{name} is not JSON")


def _has_control(text: str) -> bool:
    # Reference decision: "control characters" are Unicode category Cc (U+0000-U+001F,
    # U+007F-U+009F).
    return any(unicodedata.category(ch) == "Cc" for ch in text)


def _bounded_text(value: object, what: str, max_len: int) -> str:
    if not isinstance(value, str) or not value:
        raise _schema(f"{what} must be a non-empty string")
    if len(value) > max_len:
        raise _schema(f"{what} longer than {max_len} characters")
    if _has_control(value):
        raise _schema(f"{what} contains a control character")
    return value


def _slug(value: object, what: str) -> str:
    if not isinstance(value, str) or SLUG.fullmatch(value) is None:
        raise _schema(f"{what} is not a slug")
    return value


def _number(value: object, what: str) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _schema(f"{what} must be a JSON number")
    if isinstance(value, float) and not math.isfinite(value):
        raise _schema(f"{what} must be finite")
    return value


def _percent(value: object) -> float:
    number = _number(value, "percent")
    if not 0 <= number <= 100:
        raise _schema("percent outside 0-100")
    return float(number)


def _money(value: object, what: str) -> float:
    number = _number(value, what)
    if not 0 < number <= MAX_MONEY:
        raise _schema(f"{what} must be > 0 and at most 1e15")
    return float(number)


def _timestamp(value: object) -> int:
    """RFC 3339 with offset -> integer microseconds since the epoch, UTC."""
    if not isinstance(value, str):
        raise _schema("time must be a string")
    match = TIMESTAMP.fullmatch(value)
    if match is None:
        raise _schema("time is not an RFC 3339 timestamp with offset")
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    # Reference decision: fractions longer than 6 digits are truncated to microseconds.
    micros = int((fraction or "").ljust(6, "0")[:6])
    if offset in ("Z", "z"):
        delta = timedelta(0)
    else:
        off_h, off_m = int(offset[1:3]), int(offset[4:6])
        if off_h > 23 or off_m > 59:
            raise _schema("time has a bad offset")
        delta = timedelta(hours=off_h, minutes=off_m)
        if offset[0] == "-":
            delta = -delta
    try:
        # Reference decision: leap seconds (:60) are rejected, like any impossible time.
        local = datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second),
            micros,
            tzinfo=timezone(delta),
        )
        local.astimezone(UTC)  # reject instants that leave datetime's range in UTC
    except (ValueError, OverflowError) as exc:
        raise _schema(f"time is not a valid instant: {exc}") from None
    return (local - EPOCH) // timedelta(microseconds=1)


def _date(value: object, what: str) -> date:
    if not isinstance(value, str) or FULL_DATE.fullmatch(value) is None:
        raise _schema(f"{what} must be a YYYY-MM-DD date")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise _schema(f"{what} is not a valid date") from None


def _data_classes(value: object) -> frozenset[str]:
    if not isinstance(value, list):
        raise _schema("data_classes must be a list")
    for item in value:
        if not isinstance(item, str) or not item or len(item) > 64:
            raise _schema("data_classes entries are non-empty strings of at most 64 chars")
    return frozenset(value)  # duplicates folded


def _category(value: object) -> str:
    # Reference decision: `category` is any non-empty string (SPEC gives no format).
    if not isinstance(value, str) or not value:
        raise _schema("category must be a non-empty string")
    return value


def _optional_money(value: object, what: str) -> float | None:
    # Reference decision: an explicit null for an optional field whose absence means
    # "none" (annual_value, ends_on, spend's contract_id, sector, aliases) is accepted as
    # absent; in contract.amended null clears annual_value / ends_on (decisions.md).
    return None if value is None else _money(value, what)


def _optional_date(value: object, what: str) -> date | None:
    return None if value is None else _date(value, what)


@dataclass(frozen=True)
class Event:
    source: str
    id: str
    type: str
    time: int  # microseconds since the epoch, UTC
    data: dict[str, object]  # validated and normalised


def decode(raw: bytes) -> Event:
    """Stateless checks, in decisions.md's order: size, JSON, type, schema, same party.

    Reference decision: a `type` that is present but not one of SPEC §1 (whatever its JSON
    type) is `unknown_type` before any other field is looked at; a missing `type` is a
    missing field (`schema`).
    """
    if len(raw) > MAX_RECORD_BYTES:
        raise Rejected("too_large", f"{len(raw)} bytes")
    try:
        text = raw.decode("utf-8")
        doc = json.loads(text, parse_constant=_json_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise Rejected("invalid_json", str(exc)) from None
    if not isinstance(doc, dict):
        raise Rejected("invalid_json", "not a JSON object")

    if "type" in doc and not (isinstance(doc["type"], str) and doc["type"] in EVENT_TYPES):
        raise Rejected("unknown_type", repr(doc["type"])[:100])
    for name in ENVELOPE_FIELDS:
        if name not in doc:
            raise _schema(f"missing envelope field {name}")
    if doc["specversion"] != "1.0" or not isinstance(doc["specversion"], str):
        raise _schema("specversion must be '1.0'")
    event_id = _bounded_text(doc["id"], "id", 256)
    source = _bounded_text(doc["source"], "source", 256)
    time = _timestamp(doc["time"])
    if not isinstance(doc["data"], dict):
        raise _schema("data must be an object")
    event_type = doc["type"]
    data = doc["data"]
    required, optional = DATA_FIELDS[event_type]
    unknown = set(data) - required - optional
    if unknown:
        raise _schema(f"unknown data fields {sorted(unknown)}")
    missing = required - set(data)
    if missing:
        raise _schema(f"missing data fields {sorted(missing)}")
    clean = _validate_data(event_type, data)
    _check_same_party(event_type, clean)
    return Event(source=source, id=event_id, type=event_type, time=time, data=clean)


def _validate_data(event_type: str, data: dict[str, object]) -> dict[str, object]:
    if event_type == "ownership.stake":
        status = data.get("status", "closed")
        if status not in ("announced", "closed", "cancelled") or not isinstance(status, str):
            raise _schema("status must be announced, closed or cancelled")
        return {
            "owner": _slug(data["owner"], "owner"),
            "asset": _slug(data["asset"], "asset"),
            "percent": _percent(data["percent"]),
            "status": status,
        }
    if event_type == "contract.signed":
        return {
            "contract_id": _bounded_text(data["contract_id"], "contract_id", 128),
            "client": _slug(data["client"], "client"),
            "vendor": _slug(data["vendor"], "vendor"),
            "category": _category(data["category"]),
            "data_classes": _data_classes(data["data_classes"]),
            "annual_value": _optional_money(data.get("annual_value"), "annual_value"),
            "ends_on": _optional_date(data.get("ends_on"), "ends_on"),
        }
    if event_type == "contract.amended":
        clean: dict[str, object] = {
            "contract_id": _bounded_text(data["contract_id"], "contract_id", 128)
        }
        changes = 0
        if "data_classes" in data:
            clean["data_classes"] = _data_classes(data["data_classes"])
            changes += 1
        if "category" in data:
            clean["category"] = _category(data["category"])
            changes += 1
        if "annual_value" in data:
            clean["annual_value"] = _optional_money(data["annual_value"], "annual_value")
            changes += 1
        if "ends_on" in data:
            clean["ends_on"] = _optional_date(data["ends_on"], "ends_on")
            changes += 1
        if changes == 0:
            raise _schema("contract.amended changes nothing")
        return clean
    if event_type == "contract.terminated":
        return {"contract_id": _bounded_text(data["contract_id"], "contract_id", 128)}
    if event_type == "spend.recorded":
        contract_id = data.get("contract_id")
        return {
            "client": _slug(data["client"], "client"),
            "vendor": _slug(data["vendor"], "vendor"),
            "amount": _money(data["amount"], "amount"),
            "contract_id": (
                None if contract_id is None else _bounded_text(contract_id, "contract_id", 128)
            ),
        }
    if event_type in ("rivalry.declared", "rivalry.withdrawn"):
        sector = data.get("sector")
        # Reference decision: `sector` is any string (or null); SPEC gives no format.
        if sector is not None and not isinstance(sector, str):
            raise _schema("sector must be a string")
        return {"a": _slug(data["a"], "a"), "b": _slug(data["b"], "b")}
    if event_type == "entity.registered":
        name = data["name"]
        # Reference decision: `name` is a non-empty string, `aliases` a list of non-empty
        # strings (or null); SPEC gives no further format.
        if not isinstance(name, str) or not name:
            raise _schema("name must be a non-empty string")
        aliases = data.get("aliases")
        if aliases is not None and (
            not isinstance(aliases, list)
            or not all(isinstance(alias, str) and alias for alias in aliases)
        ):
            raise _schema("aliases must be a list of non-empty strings")
        return {"id": _slug(data["id"], "id"), "identifiers": _identifiers(data)}
    raise AssertionError(event_type)  # pragma: no cover - EVENT_TYPES is exhaustive


SCHEME = re.compile(r"[A-Z0-9]+(?:-[A-Z0-9]+)+")


def _identifiers(data: dict[str, object]) -> list[tuple[str, str]]:
    """SPEC v2 §1: a list of {scheme, id}; the scheme an org-id.guide code."""
    given = data.get("identifiers", [])
    if not isinstance(given, list) or len(given) > 64:
        raise _schema("identifiers must be a list of at most 64")
    out = []
    for item in given:
        if not isinstance(item, dict) or set(item) != {"scheme", "id"}:
            raise _schema("an identifier is {scheme, id}")
        scheme = item["scheme"]
        if (
            not isinstance(scheme, str)
            or not 2 <= len(scheme) <= 32
            or not SCHEME.fullmatch(scheme)
        ):
            raise _schema("identifier scheme must be an org-id.guide code")
        pair = (scheme, _bounded_text(item["id"], "identifier id", 256))
        if pair not in out:
            out.append(pair)
    return out


def _check_same_party(event_type: str, data: dict[str, object]) -> None:
    pair = {
        "ownership.stake": ("owner", "asset"),
        "contract.signed": ("client", "vendor"),
        "spend.recorded": ("client", "vendor"),
        "rivalry.declared": ("a", "b"),
        "rivalry.withdrawn": ("a", "b"),
    }.get(event_type)
    if pair is not None and data[pair[0]] == data[pair[1]]:
        raise Rejected("same_party", f"{pair[0]} = {pair[1]}")


# --------------------------------------------------------------------------------- state


@dataclass
class Holding:
    held: float = 0.0
    pending: float | None = None

    @property
    def effective(self) -> float:
        return self.held if self.pending is None else self.pending


@dataclass
class Contract:
    client: str
    vendor: str
    category: str
    data_classes: frozenset[str]
    annual_value: float | None
    ends_on: date | None
    terminated: bool = False


@dataclass
class State:
    applied: set[tuple[str, str]] = field(default_factory=set)
    last_stake_time: dict[tuple[str, str], int] = field(default_factory=dict)
    holdings: dict[tuple[str, str], Holding] = field(default_factory=dict)
    contracts: dict[str, Contract] = field(default_factory=dict)
    spend: list[tuple[str, str, int, float]] = field(default_factory=list)
    rivalries: set[frozenset[str]] = field(default_factory=set)
    identified: dict[tuple[str, str], str] = field(default_factory=dict)
    watermark: int | None = None


def check_against_state(state: State, event: Event) -> None:
    """Stateful checks, after every stateless one: duplicate first, then per type
    (decisions.md, "Order of checks")."""
    if (event.source, event.id) in state.applied:
        raise Rejected("duplicate", f"{event.source} {event.id}")
    data = event.data
    if event.type == "ownership.stake":
        last = state.last_stake_time.get((data["owner"], data["asset"]))
        if last is not None and event.time < last:  # equal times are not stale
            raise Rejected("stale", "older than the pair's last applied ownership event")
    elif event.type == "contract.signed":
        if data["contract_id"] in state.contracts:
            raise Rejected("contract_exists", str(data["contract_id"]))
    elif event.type in ("contract.amended", "contract.terminated"):
        if data["contract_id"] not in state.contracts:
            raise Rejected("unknown_contract", str(data["contract_id"]))
    elif event.type == "entity.registered":
        for pair in data["identifiers"]:
            holder = state.identified.get(pair, data["id"])
            if holder != data["id"]:  # one identifier, two ids: SPEC v2 §1
                raise Rejected("identifier_clash", f"{pair} names {holder}")
    elif event.type == "spend.recorded" and data["contract_id"] is not None:
        contract = state.contracts.get(data["contract_id"])
        if contract is None:
            raise Rejected("unknown_contract", str(data["contract_id"]))
        if (contract.client, contract.vendor) != (data["client"], data["vendor"]):
            raise Rejected("contract_mismatch", str(data["contract_id"]))


def apply(state: State, event: Event) -> None:
    state.applied.add((event.source, event.id))
    if state.watermark is None or event.time > state.watermark:
        state.watermark = event.time
    data = event.data
    if event.type == "ownership.stake":
        pair = (data["owner"], data["asset"])
        # Reference decision: every applied ownership event for the pair (a cancel with
        # nothing pending included) sets the time that later events are stale against.
        state.last_stake_time[pair] = event.time
        holding = state.holdings.setdefault(pair, Holding())
        if data["status"] == "announced":
            holding.pending = data["percent"]
        elif data["status"] == "closed":
            holding.held = data["percent"]
            holding.pending = None
        else:  # cancelled
            holding.pending = None
    elif event.type == "contract.signed":
        state.contracts[data["contract_id"]] = Contract(
            client=data["client"],
            vendor=data["vendor"],
            category=data["category"],
            data_classes=data["data_classes"],
            annual_value=data["annual_value"],
            ends_on=data["ends_on"],
        )
    elif event.type == "contract.amended":
        contract = state.contracts[data["contract_id"]]
        for name in ("data_classes", "category", "annual_value", "ends_on"):
            if name in data:
                setattr(contract, name, data[name])
    elif event.type == "contract.terminated":
        state.contracts[data["contract_id"]].terminated = True
    elif event.type == "spend.recorded":
        state.spend.append((data["client"], data["vendor"], event.time, data["amount"]))
    elif event.type == "rivalry.declared":
        state.rivalries.add(frozenset((data["a"], data["b"])))
    elif event.type == "rivalry.withdrawn":
        state.rivalries.discard(frozenset((data["a"], data["b"])))
    elif event.type == "entity.registered":
        # Display names and identifiers; nothing that conflicts depend on. Registering
        # again replaces the identifiers.
        for pair in [p for p, holder in state.identified.items() if holder == data["id"]]:
            del state.identified[pair]
        for pair in data["identifiers"]:
            state.identified[pair] = data["id"]


# ---------------------------------------------------------------------------- evaluation


def counted_holdings(holdings: dict[tuple[str, str], float]) -> dict[tuple[str, str], float]:
    """SPEC v2 §2: where an asset's holdings (> 0) claim more than 100 % in total, each
    counts pro rata, `percent * 100 / total` (total by math.fsum)."""
    claims: dict[str, list[float]] = {}
    for (_, asset), percent in holdings.items():
        if percent > 0:
            claims.setdefault(asset, []).append(percent)
    totals = {asset: math.fsum(values) for asset, values in claims.items()}
    return {
        (owner, asset): percent if totals.get(asset, 0.0) <= 100 else percent * 100 / totals[asset]
        for (owner, asset), percent in holdings.items()
        if percent > 0
    }


def simple_paths(
    holdings: dict[tuple[str, str], float],
    source: str,
    target: str,
    max_holdings: int = MAX_PATH_HOLDINGS,
) -> list[tuple[list[str], float]]:
    """Every simple path source -> ... -> target of at most `max_holdings` holdings with its
    stake, by counted holdings; pruned below 0.01 %."""
    edges: dict[str, list[tuple[str, float]]] = {}
    for (owner, asset), percent in sorted(counted_holdings(holdings).items()):
        edges.setdefault(owner, []).append((asset, percent))
    found: list[tuple[list[str], float]] = []

    def walk(path: list[str], stake: float) -> None:
        for nxt, percent in edges.get(path[-1], []):
            if nxt in path or len(path) > max_holdings:  # [*path, nxt] has len(path) holdings
                continue
            running = percent if len(path) == 1 else stake * percent / 100
            if running < PRUNE_BELOW:
                continue  # neither counted nor extended
            if nxt == target:
                found.append(([*path, nxt], running))
            else:
                walk([*path, nxt], running)

    walk([source], 0.0)
    return found


def effective_stake(paths: list[tuple[list[str], float]]) -> float:
    return min(100.0, math.fsum(stake for _, stake in paths))


def controls(holdings: dict[tuple[str, str], float], controller: str, target: str) -> bool:
    """Naive fixed point: add any X whose counted holdings by the controlled set sum to
    > 50, until nothing changes."""
    by_asset: dict[str, list[tuple[str, float]]] = {}
    for (owner, asset), percent in counted_holdings(holdings).items():
        by_asset.setdefault(asset, []).append((owner, percent))
    controlled = {controller}
    changed = True
    while changed:
        changed = False
        for asset in sorted(by_asset.keys() - controlled):
            held_by_group = math.fsum(p for owner, p in by_asset[asset] if owner in controlled)
            if held_by_group > 50:
                controlled.add(asset)
                changed = True
    return target in controlled


def utc_date(micros: int) -> date:
    return (EPOCH + timedelta(microseconds=micros)).date()


def rfc3339(micros: int) -> str:
    return (EPOCH + timedelta(microseconds=micros)).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Relationship:
    active: bool
    active_contracts: list[str]
    data_classes: list[str]
    spend_365d: float


def relationship(state: State, client: str, vendor: str) -> Relationship:
    assert state.watermark is not None
    now = state.watermark
    today = utc_date(now)
    # Reference decision: the pair is directional (client C, vendor V); a contract with
    # the roles swapped is another pair.
    pair_contracts = {
        cid: c for cid, c in state.contracts.items() if (c.client, c.vendor) == (client, vendor)
    }
    active = sorted(
        cid
        for cid, c in pair_contracts.items()
        if not c.terminated and (c.ends_on is None or c.ends_on >= today)
    )
    classes = sorted(set().union(*(pair_contracts[cid].data_classes for cid in active)))
    spend = math.fsum(
        amount
        for c, v, t, amount in state.spend
        if (c, v) == (client, vendor) and now - SPEND_WINDOW < t <= now
    )
    is_active = bool(active) or (not pair_contracts and spend > 0)
    return Relationship(is_active, active, classes, spend)


@dataclass(frozen=True)
class Figures:
    client: str
    vendor: str
    rival: str
    stake: float
    stake_held: float
    paths: list[tuple[list[str], float]]
    controlled: bool
    relationship: Relationship


class Reference:
    """Feed raw lines one at a time; get the alert records and the rejection code."""

    def __init__(
        self,
        threshold: float = 10,
        high_stake: float = 25,
        sensitive_classes: frozenset[str] | set[str] = DEFAULT_SENSITIVE_CLASSES,
        max_path_holdings: int = MAX_PATH_HOLDINGS,
    ) -> None:
        self.max_path_holdings = max_path_holdings
        self.threshold = threshold
        self.high_stake = high_stake
        self.sensitive = frozenset(sensitive_classes)
        self.state = State()
        self.open: dict[str, str] = {}  # dedup_key -> last severity

    @property
    def watermark(self) -> int | None:
        return self.state.watermark

    def feed(self, raw: bytes) -> tuple[list[dict[str, object]], str | None]:
        try:
            event = decode(raw)
            check_against_state(self.state, event)
        except Rejected as rejection:
            return [], rejection.code
        apply(self.state, event)
        return self._evaluate(event), None

    def load(self, raw: bytes) -> str | None:
        """Apply one line without evaluating (for long feeds checked at their end): the
        rejection code, or None."""
        try:
            event = decode(raw)
            check_against_state(self.state, event)
        except Rejected as rejection:
            return rejection.code
        apply(self.state, event)
        return None

    def conflicts_now(self) -> dict[str, str]:
        """Every conflict at W, from scratch: dedup_key -> severity."""
        return {key: self._severity(f) for key, f in self._conflicts().items()}

    # -- conflicts at W, from scratch

    def _figures(self, client: str, vendor: str, rival: str) -> Figures:
        effective = {pair: h.effective for pair, h in self.state.holdings.items()}
        held = {pair: h.held for pair, h in self.state.holdings.items()}
        limit = self.max_path_holdings
        paths = simple_paths(effective, rival, vendor, limit)
        return Figures(
            client=client,
            vendor=vendor,
            rival=rival,
            stake=effective_stake(paths),
            stake_held=effective_stake(simple_paths(held, rival, vendor, limit)),
            paths=paths,
            controlled=controls(effective, rival, vendor),
            relationship=relationship(self.state, client, vendor),
        )

    def _severity(self, figures: Figures) -> str:
        big = round(figures.stake, 9) >= self.high_stake
        sensitive = bool(self.sensitive.intersection(figures.relationship.data_classes))
        if figures.controlled or (big and sensitive):
            return "critical"
        if big or sensitive:
            return "high"
        return "warning"

    def _conflicts(self) -> dict[str, Figures]:
        state = self.state
        found: dict[str, Figures] = {}
        for rivalry in state.rivalries:
            first, second = sorted(rivalry)
            for client, rival in ((first, second), (second, first)):
                vendors = {c.vendor for c in state.contracts.values() if c.client == client}
                vendors |= {v for c, v, _, _ in state.spend if c == client}
                for vendor in vendors - {client, rival}:
                    figures = self._figures(client, vendor, rival)
                    if not figures.relationship.active:
                        continue
                    if round(figures.stake, 9) >= self.threshold:
                        found[f"{client}|{vendor}|{rival}"] = figures
        return found

    def _evaluate(self, event: Event) -> list[dict[str, object]]:
        now = self._conflicts()
        records = []
        for key in sorted(set(now) | set(self.open)):
            if key in now:
                severity = self._severity(now[key])
                if self.open.get(key) == severity:
                    continue
                self.open[key] = severity
                records.append(self._record(key, "firing", severity, now[key], event))
            else:
                client, vendor, rival = key.split("|")
                severity = self.open.pop(key)
                figures = self._figures(client, vendor, rival)
                records.append(self._record(key, "resolved", severity, figures, event))
        return records

    def _record(
        self, key: str, status: str, severity: str, figures: Figures, event: Event
    ) -> dict[str, object]:
        # Reference decision: paths are ordered by their *rounded* (published) stake
        # descending, then by entity list, so the order can be checked from the record.
        paths = sorted(
            ((path, round(stake, 6)) for path, stake in figures.paths),
            key=lambda item: (-item[1], item[0]),
        )
        rel = figures.relationship
        return {
            "dedup_key": key,
            "status": status,
            "severity": severity,
            "client": figures.client,
            "vendor": figures.vendor,
            "rival": figures.rival,
            "stake": round(figures.stake, 6),
            "controlled": figures.controlled,
            "pending": round(figures.stake_held, 9) < self.threshold,
            "paths": [{"path": path, "stake": stake} for path, stake in paths],
            "active_contracts": rel.active_contracts,
            "data_classes": rel.data_classes,
            "spend_365d": round(rel.spend_365d, 2),
            "event_id": event.id,
            "event_time": rfc3339(event.time),
        }
