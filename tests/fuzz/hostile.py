"""Hostile records and the invariants every one of them must keep (issue 8, hostile input).

Shared by the Hypothesis tests (tests/unit/test_fuzz_decode.py) and the atheris script
(tests/fuzz/fuzz_decode.py), so both check the same contract:

- ``decode(raw)`` never raises; a rejection has a code from the documented set
  (docs/decisions.md, "Rejections") and a one-line, bounded detail that survives being
  written as a dead-letter header;
- ``Engine.process(raw)`` never raises, rejects whatever ``decode`` rejects with the same
  code and detail (its fast path must not accept more), and a rejected record moves
  neither the watermark nor anything else;
- alert records it emits serialize.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import orjson
from hypothesis import strategies as st

from streams.engine import Engine
from streams.events import MAX_RECORD_BYTES, Rejection, decode
from streams.kafka.headers import dead_letter_headers

ROOT = Path(__file__).resolve().parents[2]
DECISIONS = ROOT / "docs" / "decisions.md"
MAX_DETAIL = 1024  # a reason is a line, not an echo of the record


def documented_codes() -> frozenset[str]:
    """The rejection codes of docs/decisions.md's "Rejections" table."""
    text = DECISIONS.read_text()
    section = text.split("## Rejections", 1)[1].split("\n## ", 1)[0]
    return frozenset(re.findall(r"^\| `([a-z_]+)` \|", section, re.MULTILINE))


ALL_CODES = documented_codes()
# Codes a record earns on its own; the rest need the engine's state (duplicate, stale, ...).
STATELESS_CODES = frozenset({"too_large", "invalid_json", "unknown_type", "schema", "same_party"})


# -- the invariants ---------------------------------------------------------------------------


def check_rejection(rejection: Rejection, allowed: frozenset[str] = ALL_CODES) -> None:
    assert rejection.code in allowed, rejection
    detail = rejection.detail
    assert detail.strip(), rejection
    assert len(str(rejection).splitlines()) == 1, rejection
    assert len(detail) <= MAX_DETAIL, f"{len(detail)}-character detail"
    headers = dict(dead_letter_headers(rejection, source_topic="t", partition=0, offset=1))
    assert headers["code"] == rejection.code.encode()


def check_decode(raw: bytes) -> Any:
    result = decode(raw)
    if isinstance(result, Rejection):
        check_rejection(result, STATELESS_CODES)
    return result


def check_engine(engine: Engine, raw: bytes) -> None:
    before = (engine.watermark, engine.stats["applied"], len(engine.seen), dict(engine.open))
    outcome = engine.process(raw)
    decoded = decode(raw)
    if isinstance(decoded, Rejection):
        assert outcome.rejection == decoded, (raw[:200], outcome.rejection, decoded)
    if outcome.rejection is not None:
        check_rejection(outcome.rejection)
        after = (engine.watermark, engine.stats["applied"], len(engine.seen), dict(engine.open))
        assert after == before, "a rejected record changed the engine"
        assert not outcome.records
    for record in outcome.records:
        orjson.dumps(record.to_dict())


# -- valid events of every type ----------------------------------------------------------------

TEMPLATES: dict[str, dict[str, Any]] = {
    "ownership.stake": {"owner": "meta", "asset": "scale-ai", "percent": 49, "status": "announced"},
    "contract.signed": {
        "contract_id": "c-1",
        "client": "google",
        "vendor": "scale-ai",
        "category": "data-labeling",
        "data_classes": ["prototypes", "confidential_data"],
        "annual_value": 1.5e8,
        "ends_on": "2026-12-31",
    },
    "contract.amended": {"contract_id": "c-1", "data_classes": ["user_data"], "ends_on": None},
    "contract.terminated": {"contract_id": "c-1"},
    "spend.recorded": {"client": "google", "vendor": "scale-ai", "amount": 150e6},
    "rivalry.declared": {"a": "google", "b": "meta", "sector": "frontier-ai"},
    "rivalry.withdrawn": {"a": "google", "b": "meta"},
    "entity.registered": {"id": "scale-ai", "name": "Scale AI", "aliases": ["Scale"]},
}
TYPES = tuple(TEMPLATES)
SLUGS = ("google", "meta", "openai", "scale-ai", "labelbox")


def envelope(etype: str, data: dict[str, Any], **over: Any) -> dict[str, Any]:
    doc = {
        "specversion": "1.0",
        "id": "e-1",
        "source": "/feeds/fuzz",
        "type": etype,
        "time": "2025-06-01T12:00:00Z",
        "data": data,
    }
    doc.update(over)
    return doc


def dumps(doc: Any) -> bytes:
    """stdlib json: it also writes NaN, Infinity and integers past 64 bits."""
    return json.dumps(doc, separators=(",", ":")).encode()


def seed_records() -> list[bytes]:
    """One valid record of every type, in an order the engine applies (a corpus seed)."""
    order = (
        "entity.registered",
        "rivalry.declared",
        "contract.signed",
        "spend.recorded",
        "ownership.stake",
        "contract.amended",
        "rivalry.withdrawn",
        "contract.terminated",
    )
    return [
        dumps(envelope(t, TEMPLATES[t], id=f"seed-{i}", time=f"2025-06-0{i + 1}T00:00:00Z"))
        for i, t in enumerate(order)
    ]


# -- hostile values ------------------------------------------------------------------------------

LOOK_ALIKES = [
    "m\u0435ta",  # Cyrillic е
    "sc\u0430le-ai",  # Cyrillic а
    "g\u043e\u043egle",  # Cyrillic о о
    "\uff4d\uff45\uff54\uff41",  # fullwidth
    "me\u200bta",  # zero-width space
    "meta\u0301",  # combining accent
    "ＭＥＴＡ",
    "META",
    "meta\n",
    "-meta",
    "me ta",
    "x" * 129,
    "\ud800",  # lone surrogate (json.dumps writes it as an escape)
]
NUMBERS = [
    None, True, False, 0, -1, -0.0, 1e308, -1e308, 5e-324, 10**30, -(10**30), 2**63, 2**64 + 1,
    10**400, float("nan"), float("inf"), float("-inf"), "49", "1e3", "NaN", [], {}, [49], {"v": 1},
]  # fmt: skip
TIMES = [
    "2025-06-01T12:00:00",  # no offset
    "2025-06-01",
    "9999-12-31T23:59:59Z",  # far future
    "2100-01-01T00:00:00Z",
    "9999-12-31T23:00:00-00:59",  # the last UTC second
    "0001-01-01T23:59:00+23:59",  # the first one
    "0000-01-01T00:00:00Z",
    "+12025-01-01T00:00:00Z",
    "2025-02-30T00:00:00Z",
    "2025-06-01T23:59:60Z",
    "2025-06-01T24:00:00Z",
    "2025-06-01 12:00:00Z",
    "2025-06-01t12:00:00z",
    "2025-06-01T12:00:00.1234567891Z",
    "2025-06-01T12:00:00+24:00",
    "1748779200",
    1748779200,
    None,
    "9999-12-31T23:59:59-23:59",
    "0001-01-01T00:00:00+23:59",
    "2500-01-01T00:00:00Z",
]
# Valid local dates that leave datetime's range once converted to UTC, and far-off years:
# `decode` rejects them (`schema`, times outside 1900..2200 UTC).
OUT_OF_RANGE_TIMES = [
    "9999-12-31T23:59:59-23:59",
    "0001-01-01T00:00:00+23:59",
    "2500-01-01T00:00:00Z",
    "1899-12-31T23:59:59Z",
]
STRINGS = ["", " ", "a" * 300, "\x00", "\x7f", "a\u2028b", "a\x85b", "\U0001f600", "é" * 200]
HOSTILE_VALUES = [*LOOK_ALIKES, *NUMBERS, *TIMES, *STRINGS]
RAW_VALUES = [b"NaN", b"-Infinity", b"Infinity", b"1e400", b"-1e400", b"1" * 5000, b"0x10",
              b"01", b"1.", b".5", b"+1", b"tru", b"\"\\ud800\"", b"\"\\u0000\""]  # fmt: skip

_ENVELOPE_KEYS = ("specversion", "id", "source", "type", "time", "data")
_DATA_KEYS = sorted({k for d in TEMPLATES.values() for k in d})
_KEYS = st.sampled_from(_ENVELOPE_KEYS + tuple(f"data.{k}" for k in _DATA_KEYS))
_VALUES = st.one_of(
    st.sampled_from(HOSTILE_VALUES),
    st.sampled_from(SLUGS),
    st.integers(),
    st.floats(),
    st.text(max_size=20),
)


def _target(doc: dict[str, Any], key: str) -> tuple[Any, str]:
    if key.startswith("data."):
        return doc.get("data"), key.removeprefix("data.")
    return doc, key


def _set(doc: dict[str, Any], key: str, value: Any) -> None:
    target, name = _target(doc, key)
    if isinstance(target, dict):
        target[name] = value


def _drop(doc: dict[str, Any], key: str) -> None:
    target, name = _target(doc, key)
    if isinstance(target, dict):
        target.pop(name, None)


@st.composite
def near_valid(draw: st.DrawFn) -> bytes:
    """A valid event of some type with one to three things wrong with it."""
    etype = draw(st.sampled_from(TYPES))
    doc = envelope(etype, dict(TEMPLATES[etype]), id=f"e-{draw(st.integers(0, 20))}")
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["set", "set", "drop", "extra", "type", "time"]))
        if kind == "time":
            doc["time"] = draw(st.sampled_from(TIMES))
        elif kind == "set":
            _set(doc, draw(_KEYS), draw(_VALUES))
        elif kind == "drop":
            _drop(doc, draw(_KEYS))
        elif kind == "extra":
            _set(doc, draw(st.sampled_from(["x-ext", "data.precent", "data.extra"])), 1)
        elif kind == "type":
            doc["type"] = draw(st.sampled_from([*TYPES, "ownership.Stake", "spend", ""]))
    raw = dumps(doc)
    if draw(st.booleans()):
        raw = draw(raw_mutations(raw))
    return raw


@st.composite
def raw_mutations(draw: st.DrawFn, raw: bytes) -> bytes:
    """Byte-level damage to an encoded record."""
    kind = draw(
        st.sampled_from(
            ["truncate", "insert", "number", "dup-key", "bom", "trail", "nest", "pad", "bad-utf8"]
        )
    )
    if kind == "truncate":
        return raw[: draw(st.integers(0, len(raw)))]
    if kind == "insert":
        at = draw(st.integers(0, len(raw)))
        return raw[:at] + draw(st.binary(min_size=1, max_size=4)) + raw[at:]
    if kind == "number":  # a token stdlib json would not write, where a number goes
        token = draw(st.sampled_from(RAW_VALUES))
        return re.sub(rb"(?<=:)-?[0-9][0-9.eE+-]*", lambda _: token, raw, count=1)
    if kind == "dup-key":  # the later one wins in most parsers; must not disagree silently
        return raw.replace(b'{"specversion"', b'{"id":"dup","type":"nope","specversion"', 1)
    if kind == "bom":
        return b"\xef\xbb\xbf" + raw
    if kind == "trail":
        return raw + draw(st.sampled_from([b"\n", b" ", b"}", b"x", b"\x00", b"{}"]))
    if kind == "nest":
        depth = draw(st.sampled_from([64, 1_000, 5_000, 30_000]))
        return raw.replace(b'"data":', b'"data":' + b"[" * depth, 1) + b"]" * depth
    if kind == "pad":  # an extension attribute that takes the record to the size limit
        room = MAX_RECORD_BYTES - len(raw) - len(b',"xpad":""')
        room += draw(st.sampled_from([-1, 0, 1, 1_000]))
        return raw[:-1] + b',"xpad":"' + b"a" * max(room, 0) + b'"}'
    # bad-utf8: a byte that cannot start or continue UTF-8, inside a string
    return raw.replace(b'"/feeds/', b'"/feeds/\xff', 1)


def json_values() -> st.SearchStrategy[Any]:
    """Arbitrary JSON (NaN and Infinity included), as parsers see it."""
    scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
    return st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=5)
            | st.dictionaries(st.sampled_from([*_ENVELOPE_KEYS, "x"]) | st.text(max_size=8), inner)
        ),
        max_leaves=20,
    )


def valid_records() -> st.SearchStrategy[bytes]:
    """Valid events over a tiny universe, so a stream builds state the hostile ones hit."""
    slugs = st.sampled_from(SLUGS)

    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        etype = draw(st.sampled_from(TYPES))
        data = dict(TEMPLATES[etype])
        for key in ("owner", "asset", "client", "vendor", "a", "b", "id"):
            if key in data:
                data[key] = draw(slugs)
        if "contract_id" in data:
            data["contract_id"] = draw(st.sampled_from(["c-1", "c-2"]))
        day = draw(st.integers(1, 28))
        year = draw(st.sampled_from([2024, 2025, 2026]))
        return dumps(
            envelope(
                etype,
                data,
                id=f"v-{draw(st.integers(0, 40))}",
                time=f"{year}-0{draw(st.integers(1, 9))}-{day:02}T00:00:00Z",
            )
        )

    return build()


def hostile_records() -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.binary(max_size=512),
        json_values().map(dumps),
        json_values().map(lambda v: dumps(envelope("spend.recorded", v))),
        near_valid(),
    )
