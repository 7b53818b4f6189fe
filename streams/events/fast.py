"""A fast path for the common, well-formed record, and the flat form the engine applies.

`decode` (pydantic) is the validation boundary and stays the single source of truth for what
is accepted and why a record is rejected. Most of a real stream, though, is the same few
shapes written by the same producers, and validating those through the model costs more
than applying them. `fast_decode` recognises a strict *subset* of valid records — the
envelope with only known CloudEvents attributes, ASCII `YYYY-MM-DDTHH:MM:SS[.ffffff]`
times with `Z` or a `±HH:MM` offset, exact JSON types, no same-party event — and returns
them in the engine's flat form. For everything else, including every record that would be
rejected, it returns None and the caller falls back to `decode`. It never rejects, so
rejection codes and details come from one place only.

The contract, checked by tests/unit/engine/test_fast_decode.py on valid and mutated
records: `fast_decode(raw)` is None, or equal to `flatten(decode(raw))`.

Flat form: `(type, source, id, time in µs since the epoch UTC, data)` where `data` is
- `ownership.stake`: `(owner, asset, percent, status)`
- `contract.signed`: `(contract_id, client, vendor, category, data_classes, annual_value,
  ends_on)` — `data_classes` a tuple as sent, `ends_on` days since the epoch or None
- `contract.amended`: `(contract_id, changes)` — `changes` maps each field present to its
  value (`ends_on` in days, `data_classes` a tuple)
- `contract.terminated`: `(contract_id,)`
- `spend.recorded`: `(client, vendor, amount, contract_id)`
- `rivalry.declared` / `rivalry.withdrawn`: `(a, b, sector)`
- `entity.registered`: `(id, name, aliases, identifiers)` — `identifiers` a tuple of
  `(scheme, id)` pairs, each once, in the order given (the fast path takes only events
  without identifiers: they are rare)
"""

from __future__ import annotations

import datetime as dt
import re
from enum import Enum
from typing import Any, Final

import orjson

from streams.events.decode import MAX_RECORD_BYTES, decode
from streams.events.models import (
    MAX_MONEY,
    ContractAmended,
    ContractSigned,
    ContractTerminated,
    EntityRegistered,
    Event,
    OwnershipStake,
    RivalryDeclared,
    RivalryWithdrawn,
    SpendRecorded,
)
from streams.events.rejection import Rejection

__all__ = ["Data", "Flat", "decode_flat", "fast_decode", "flatten", "to_day", "to_micros"]

Data = tuple[Any, ...]  # the event's data fields, in the order its handler unpacks them
Flat = tuple[str, str, str, int, Data]

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()
_fromisoformat = dt.datetime.fromisoformat
_US = dt.timedelta(microseconds=1)


def to_micros(t: dt.datetime) -> int:
    """An aware datetime as integer microseconds since the epoch, UTC."""
    return (t - _EPOCH) // _US


def to_day(d: dt.date | None) -> int | None:
    """A date as days since the epoch."""
    return None if d is None else d.toordinal() - _EPOCH_ORDINAL


def flatten(event: Event) -> Flat:
    """The flat form of a validated event (what `fast_decode` returns for the same bytes)."""
    d = event.data
    etype = event.type
    data: Data
    if etype == "spend.recorded":
        assert isinstance(event, SpendRecorded)
        d = event.data
        data = (d.client, d.vendor, d.amount, d.contract_id)
    elif etype == "ownership.stake":
        assert isinstance(event, OwnershipStake)
        d = event.data
        data = (d.owner, d.asset, d.percent, d.status)
    elif etype == "contract.signed":
        assert isinstance(event, ContractSigned)
        d = event.data
        data = (
            d.contract_id,
            d.client,
            d.vendor,
            d.category,
            tuple(d.data_classes),
            d.annual_value,
            to_day(d.ends_on),
        )
    elif etype == "contract.amended":
        assert isinstance(event, ContractAmended)
        d = event.data
        changes = {k: getattr(d, k) for k in sorted(d.model_fields_set) if k != "contract_id"}
        if "ends_on" in changes:
            changes["ends_on"] = to_day(changes["ends_on"])
        if "data_classes" in changes:
            changes["data_classes"] = tuple(changes["data_classes"])
        data = (d.contract_id, changes)
    elif etype == "contract.terminated":
        assert isinstance(event, ContractTerminated)
        data = (event.data.contract_id,)
    elif etype in ("rivalry.declared", "rivalry.withdrawn"):
        assert isinstance(event, RivalryDeclared | RivalryWithdrawn)
        data = (event.data.a, event.data.b, event.data.sector)
    else:
        assert isinstance(event, EntityRegistered)
        d = event.data
        pairs = tuple(dict.fromkeys((i.scheme, i.id) for i in d.identifiers))
        data = (d.id, d.name, tuple(d.aliases), pairs)
    return (etype, event.source, event.id, to_micros(event.time), data)


# -- the fast path ----------------------------------------------------------------------------
#
# Everything below either proves a value is what the model would produce, or gives up. The
# caches hold strings already proven (a slug, a short text, a date, an hour); they are
# bounded and only ever skip a check that passed before for the same string. Slugs come
# back as the cached string object, so that the engine's keys share one object per entity
# (cheaper hashing and comparison, less memory).


class _Missing(Enum):
    MISSING = 0


_MISSING: Final = _Missing.MISSING  # a cache miss (None is a cached answer)
_CACHE_LIMIT = 100_000
_slug_match = re.compile(r"[a-z0-9][a-z0-9._-]{0,127}").fullmatch  # fullmatch: no `$`-before-\n
# Ranges in the pattern (hour 00-23, minute and second 00-59, offset up to 23:59); the
# date's validity, and a year in 2..9998 (no offset can leave datetime's range), in _day.
_time_match = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
    r"(?:\.[0-9]{1,6})?(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
).fullmatch
_date_match = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}").fullmatch
_ENVELOPE = frozenset({"specversion", "id", "source", "type", "time", "data"})
_OPTIONAL_ATTRIBUTES = frozenset({"datacontenttype", "dataschema", "subject"})
_STATUSES = frozenset({"announced", "closed", "cancelled"})
_FRACTION_SCALE = (0, 100_000, 10_000, 1_000, 100, 10, 1)
_days: dict[str, int | None] = {}  # "YYYY-MM-DD" -> days since the epoch, None: not a date
_HOUR_MINUTE = {f"{h:02}:{m:02}": h * 3_600 + m * 60 for h in range(24) for m in range(60)}
_MINUTE_SECOND = {f"{m:02}:{s:02}": m * 60 + s for m in range(60) for s in range(60)}
_hours: dict[str, int | None] = {}  # "YYYY-MM-DDTHH" -> seconds since the epoch
_SLUG_LIMIT = 200_000
_slugs: dict[str, str] = {}
_texts: dict[str, str] = {}  # proven `Text` values of at most 64 characters


def _day(text: str) -> int | None:
    """Days since the epoch of an ASCII `YYYY-MM-DD` in years 2..9998, else None."""
    day = _days.get(text, _MISSING)
    if day is _MISSING:
        day = None
        year = int(text[:4])
        if 2 <= year <= 9998:
            try:
                day = dt.date(year, int(text[5:7]), int(text[8:10])).toordinal() - _EPOCH_ORDINAL
            except ValueError:
                day = None
        if len(_days) >= _CACHE_LIMIT:
            _days.clear()
        _days[text] = day
    return day


def _hour(prefix: str) -> int | None:
    """Seconds since the epoch at `YYYY-MM-DDTHH` (already matched), None if no such day.
    Event times outside 1901..2198 take the slow path, whose range check (1900..2200 UTC,
    decode.py) then rejects or accepts them."""
    day = _day(prefix[:10]) if 1901 <= int(prefix[:4]) <= 2198 else None
    base = None if day is None else day * 86_400 + int(prefix[11:13]) * 3_600
    if len(_hours) >= _CACHE_LIMIT:
        _hours.clear()
    _hours[prefix] = base
    return base


def _micros(value: object) -> int | None:
    """`YYYY-MM-DDTHH:MM:SS[.f{1,6}](Z|±HH:MM)` as µs since the epoch, else None. UTC
    times (nearly all) are parsed by ``datetime.fromisoformat`` in C once the separators
    are where the pattern puts them: it checks the digits and the ranges, and accepts
    nothing here the pattern refuses (tests/unit/events/test_fast_decode.py compares the
    two on mutated times)."""
    if type(value) is not str:
        return None
    n = len(value)
    if n < 20 or value[n - 1] != "Z":
        return _micros_offset(value)
    if n != 20 and not (22 <= n <= 27 and value[19] == "." and value[20 : n - 1].isdigit()):
        return None
    if (
        value[10] != "T"
        or value[4] != "-"
        or value[7] != "-"
        or value[13] != ":"
        or value[16] != ":"
    ):
        return None
    try:
        d = _fromisoformat(value)
    except ValueError:
        return None
    if not 1901 <= d.year <= 2198:  # outside: the slow path's range check decides
        return None
    seconds = (d.toordinal() - _EPOCH_ORDINAL) * 86_400 + d.hour * 3_600 + d.minute * 60
    return (seconds + d.second) * 1_000_000 + d.microsecond


def _micros_offset(value: str) -> int | None:
    """`_micros` by the pattern and the hour cache: times with an offset, and anything
    that does not end in Z."""
    if _time_match(value) is None:
        return None
    base = _hours.get(value[:13], _MISSING)
    if base is _MISSING:
        base = _hour(value[:13])
    if base is None:
        return None
    seconds = base + _MINUTE_SECOND[value[14:19]]
    end = len(value) - 1
    if value[end] != "Z":
        end -= 5
        offset = _HOUR_MINUTE[value[end + 1 : end + 6]]
        seconds = seconds + offset if value[end] == "-" else seconds - offset
    if end == 19:
        return seconds * 1_000_000
    return seconds * 1_000_000 + int(value[20:end]) * _FRACTION_SCALE[end - 20]


def _text(value: object, limit: int) -> bool:
    # isprintable() is False for every character in [\x00-\x1f\x7f] (and for some the
    # models accept, which then take the slow path): a subset of the models' pattern.
    return type(value) is str and 0 < len(value) <= limit and value.isprintable()


def _short_text(value: object) -> str | None:
    """The canonical (cached) object of a `Text` of at most 64 characters (a source, a
    category, a data class: few distinct values, repeated), else None."""
    if type(value) is not str:
        return None
    canonical = _texts.get(value)
    if canonical is not None:
        return canonical
    if not (0 < len(value) <= 64 and value.isprintable()):
        return None
    if len(_texts) >= _CACHE_LIMIT:
        _texts.clear()
    _texts[value] = value
    return value


def _label(value: object) -> str | None:
    """A `Text` (at most 256 characters): canonical when short, else None."""
    short = _short_text(value)
    if short is not None:
        return short
    return value if _text(value, 256) else None  # type: ignore[return-value]


def _slug(value: object) -> str | None:
    """The canonical (cached) object of a valid slug, else None."""
    if type(value) is not str:
        return None
    canonical = _slugs.get(value)
    if canonical is not None:
        return canonical
    if _slug_match(value) is None:
        return None
    if len(_slugs) >= _SLUG_LIMIT:
        _slugs.clear()
    _slugs[value] = value
    return value


def _money(value: object) -> float | None:
    kind = type(value)
    if kind is float:
        if 0 < value <= MAX_MONEY:  # type: ignore[operator]  # NaN fails both comparisons
            return value  # type: ignore[return-value]
    elif kind is int and 0 < value <= MAX_MONEY:  # type: ignore[operator]  # bool is not int
        return float(value)  # type: ignore[arg-type]
    return None


def _percent(value: object) -> float | None:
    kind = type(value)
    if kind is float:
        if 0 <= value <= 100:  # type: ignore[operator]
            return value  # type: ignore[return-value]
    elif kind is int and 0 <= value <= 100:  # type: ignore[operator]
        return float(value)  # type: ignore[arg-type]
    return None


def _classes(value: object) -> tuple[str, ...] | None:
    if type(value) is not list or len(value) > 64:
        return None
    classes = tuple(_short_text(item) for item in value)
    return None if None in classes else classes  # type: ignore[return-value]


def _ends_on(value: object) -> Any:
    """Days since the epoch, None for null, _MISSING when the fast path cannot vouch."""
    if value is None:
        return None
    if type(value) is str and _date_match(value) is not None:
        day = _day(value)
        if day is not None:
            return day
    return _MISSING


def decode_flat(raw: bytes) -> Flat | Rejection:
    """Bytes to the flat event, or the rejection ``decode`` gives: the one decoding step of
    every adapter (``Engine.process``, ``Ledger.process``). Common shapes take the fast
    path; everything else, and so every bad record, goes through the models."""
    flat = fast_decode(raw)
    if flat is not None:
        return flat
    event = decode(raw)
    return event if isinstance(event, Rejection) else flatten(event)


def fast_decode(raw: object) -> Flat | None:
    """The flat form of a record the models certainly accept, or None (use `decode`)."""
    if type(raw) is not bytes or len(raw) > MAX_RECORD_BYTES:
        return None
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if type(doc) is not dict:
        return None
    if len(doc) != 6:
        extra = doc.keys() - _ENVELOPE
        if len(doc) - len(extra) != 6 or not extra <= _OPTIONAL_ATTRIBUTES:
            return None
        for key in extra:
            if type(doc[key]) is not str:
                return None
    etype = doc.get("type")
    flat = _DATA.get(etype) if type(etype) is str else None
    eid = doc.get("id")
    data = doc.get("data")
    if (
        flat is None
        or doc.get("specversion") != "1.0"
        or type(data) is not dict
        or type(eid) is not str
        or not (0 < len(eid) <= 256 and eid.isprintable())
    ):
        return None
    source = doc.get("source")
    if type(source) is not str or (source not in _texts and _label(source) is None):
        return None
    t = _micros(doc.get("time"))
    if t is None:
        return None
    body = flat(data)
    if body is None:
        return None
    return (etype, source, eid, t, body)  # type: ignore[return-value]


def _spend(d: dict[str, Any]) -> Data | None:
    cid = d.get("contract_id", _MISSING)
    if cid is _MISSING:
        if len(d) != 3:
            return None
        cid = None
    elif len(d) != 4 or (
        cid is not None
        and (type(cid) is not str or not (0 < len(cid) <= 128 and cid.isprintable()))
    ):
        return None
    client = d.get("client")
    vendor = d.get("vendor")
    amount = d.get("amount")
    if type(amount) is not float or not 0 < amount <= MAX_MONEY:
        amount = _money(amount)
        if amount is None:
            return None
    # _slug(), with the cache lookup inline (spend is most of a stream)
    client = (_slugs.get(client) or _slug(client)) if type(client) is str else None
    vendor = (_slugs.get(vendor) or _slug(vendor)) if type(vendor) is str else None
    if client is None or vendor is None or client == vendor:
        return None
    return (client, vendor, amount, cid)


def _stake(d: dict[str, Any]) -> Data | None:
    status = d.get("status", _MISSING)
    if status is _MISSING:
        if len(d) != 3:
            return None
        status = "closed"
    elif len(d) != 4 or type(status) is not str or status not in _STATUSES:
        return None
    owner = d.get("owner")
    asset = d.get("asset")
    percent = _percent(d.get("percent"))
    owner = _slug(owner)
    asset = _slug(asset)
    if percent is None or owner is None or asset is None or owner == asset:
        return None
    return (owner, asset, percent, status)


_SIGNED_KEYS = frozenset(
    {"contract_id", "client", "vendor", "category", "data_classes", "annual_value", "ends_on"}
)


def _signed(d: dict[str, Any]) -> Data | None:
    if not (5 <= len(d) <= 7) or not d.keys() <= _SIGNED_KEYS:
        return None
    cid = d.get("contract_id")
    client = _slug(d.get("client"))
    vendor = _slug(d.get("vendor"))
    category = _label(d.get("category"))
    classes = _classes(d.get("data_classes"))
    value = d.get("annual_value")
    if value is not None:
        value = _money(value)
        if value is None:
            return None
    ends_on = _ends_on(d.get("ends_on"))
    if (
        classes is None
        or ends_on is _MISSING
        or not _text(cid, 128)
        or category is None
        or client is None
        or vendor is None
        or client == vendor
    ):
        return None
    return (cid, client, vendor, category, classes, value, ends_on)


_AMENDED_KEYS = frozenset({"contract_id", "data_classes", "annual_value", "ends_on", "category"})


def _amended(d: dict[str, Any]) -> Data | None:
    if len(d) < 2 or not d.keys() <= _AMENDED_KEYS:
        return None
    cid = d.get("contract_id")
    if not _text(cid, 128):
        return None
    changes: dict[str, Any] = {}
    for key in sorted(d):
        value = d[key]
        if key == "contract_id":
            continue
        if key == "data_classes":
            value = _classes(value)
            if value is None:
                return None
        elif key == "category":
            value = _label(value)
            if value is None:
                return None
        elif key == "annual_value":
            if value is not None:
                value = _money(value)
                if value is None:
                    return None
        else:  # ends_on
            value = _ends_on(value)
            if value is _MISSING:
                return None
        changes[key] = value
    return (cid, changes)


def _terminated(d: dict[str, Any]) -> Data | None:
    cid = d.get("contract_id")
    if len(d) != 1 or not _text(cid, 128):
        return None
    return (cid,)


def _rivalry(d: dict[str, Any]) -> Data | None:
    sector = d.get("sector", _MISSING)
    if sector is _MISSING:
        if len(d) != 2:
            return None
        sector = None
    elif len(d) != 3 or (sector is not None and (sector := _label(sector)) is None):
        return None
    a = _slug(d.get("a"))
    b = _slug(d.get("b"))
    if a is None or b is None or a == b:
        return None
    return (a, b, sector)


def _entity(d: dict[str, Any]) -> Data | None:
    aliases = d.get("aliases", _MISSING)
    if aliases is _MISSING:
        if len(d) != 2:
            return None
        aliases = ()
    else:
        if len(d) != 3 or type(aliases) is not list or len(aliases) > 64:
            return None
        for alias in aliases:
            if not _text(alias, 256):
                return None
        aliases = tuple(aliases)
    entity = _slug(d.get("id"))
    name = d.get("name")
    if entity is None or not _text(name, 256):
        return None
    return (entity, name, aliases, ())


_DATA = {
    "spend.recorded": _spend,
    "ownership.stake": _stake,
    "contract.signed": _signed,
    "contract.amended": _amended,
    "contract.terminated": _terminated,
    "rivalry.declared": _rivalry,
    "rivalry.withdrawn": _rivalry,
    "entity.registered": _entity,
}
