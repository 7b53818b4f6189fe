"""Hostile input: the decoder and the engine never raise, every reject has a documented code
and a one-line reason (tests/fuzz/hostile.py holds the records and the invariants).

Derandomized, so CI sees the same few thousand records every run; the atheris run
(tests/fuzz/fuzz_decode.py) explores further on demand.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from streams.engine import Engine  # noqa: E402
from streams.events import MAX_RECORD_BYTES, Rejection, decode  # noqa: E402
from tests.fuzz.hostile import (  # noqa: E402
    ALL_CODES,
    LOOK_ALIKES,
    TEMPLATES,
    check_decode,
    check_engine,
    dumps,
    envelope,
    hostile_records,
    near_valid,
    seed_records,
    valid_records,
)

FUZZ = settings(
    max_examples=400,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def test_the_documented_codes_are_the_ones_the_code_uses() -> None:
    expected = {
        "too_large", "invalid_json", "unknown_type", "schema", "same_party", "duplicate",
        "stale", "future", "unknown_contract", "contract_exists", "contract_mismatch",
        "identifier_clash",
    }  # fmt: skip
    assert expected == ALL_CODES


@FUZZ
@given(raw=st.binary(max_size=2048))
def test_decode_survives_any_bytes(raw: bytes) -> None:
    check_decode(raw)


@FUZZ
@given(raw=hostile_records())
def test_decode_survives_hostile_records(raw: bytes) -> None:
    check_decode(raw)


@FUZZ
@given(raw=near_valid())
def test_decode_survives_near_valid_events(raw: bytes) -> None:
    check_decode(raw)


@settings(FUZZ, max_examples=150)
@given(stream=st.lists(st.one_of(valid_records(), hostile_records()), min_size=1, max_size=40))
def test_the_engine_survives_a_hostile_stream(stream: list[bytes]) -> None:
    """Valid events build state (contracts, holdings, rivals) for the hostile ones to hit."""
    engine = Engine()
    for raw in seed_records() + stream:
        check_engine(engine, raw)


# -- the named cases, each once ------------------------------------------------------------


def _spend(data: dict | None = None, **over: object) -> dict:
    return envelope("spend.recorded", data or dict(TEMPLATES["spend.recorded"]), **over)


def _code(raw: bytes) -> str:
    result = check_decode(raw)
    check_engine(Engine(), raw)
    return result.code if isinstance(result, Rejection) else "accepted"


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"[" * 100_000, "too_large"),
        (b"[" * 60_000, "invalid_json"),
        (b"[" * 30_000 + b"]" * 30_000, "invalid_json"),
        (b'{"a":' * 10_000 + b"1" + b"}" * 10_000, "invalid_json"),
        (
            dumps(_spend()).replace(b'"data":', b'"data":' + b"[" * 20_000) + b"]" * 20_000,
            "invalid_json",
        ),
        (dumps(_spend()).replace(b"150000000.0", b"1" * 400), "invalid_json"),
        (dumps(_spend()).replace(b"150000000.0", b"1e400"), "invalid_json"),
        (dumps(_spend()).replace(b"150000000.0", b"-150000000.0"), "schema"),
        (dumps(_spend()).replace(b"150000000.0", b"NaN"), "invalid_json"),
        (dumps(_spend()).replace(b"150000000.0", b"Infinity"), "invalid_json"),
        (dumps(_spend()).replace(b"150000000.0", b"1e16"), "schema"),
        (dumps(_spend(time="2025-06-01T12:00:00")), "schema"),
        (dumps(_spend(time="2025-06-31T12:00:00Z")), "schema"),
        (dumps(_spend(id="x" * 257)), "schema"),
        (b"\xef\xbb\xbf" + dumps(_spend()), "invalid_json"),
        (dumps(_spend()).replace(b'"/feeds/', b'"/feeds/\xff'), "invalid_json"),
        (dumps(_spend())[:-1], "invalid_json"),
    ],
    ids=[
        "100k-brackets",
        "60k-brackets-unclosed",
        "30k-brackets-closed",
        "10k-objects",
        "20k-deep-data",
        "400-digit-amount",
        "1e400",
        "negative-amount",
        "NaN",
        "Infinity",
        "over-1e15",
        "time-without-offset",
        "no-such-day",
        "id-too-long",
        "utf8-bom",
        "invalid-utf8",
        "truncated",
    ],
)
def test_named_hostile_records(raw: bytes, code: str) -> None:
    assert _code(raw) == code


@pytest.mark.parametrize("slug", LOOK_ALIKES[:-1])
@pytest.mark.parametrize("field", ["client", "vendor"])
def test_a_look_alike_id_is_rejected_not_a_new_entity(slug: str, field: str) -> None:
    """`mеta` (Cyrillic е) must not become a second Meta that no rivalry names."""
    assert _code(dumps(_spend(data={**TEMPLATES["spend.recorded"], field: slug}))) == "schema"


def test_the_size_limit_is_exact() -> None:
    """A record of exactly MAX_RECORD_BYTES is read; one byte more is not even parsed."""
    base = dumps(_spend())
    pad = MAX_RECORD_BYTES - len(base) - len(b',"xpad":""')
    at_limit = base[:-1] + b',"xpad":"' + b"a" * pad + b'"}'
    assert len(at_limit) == MAX_RECORD_BYTES
    assert _code(at_limit) == "accepted"
    over = at_limit[:-2] + b'a"}'
    assert _code(over) == "too_large"
    assert decode(over).detail == f"record is {MAX_RECORD_BYTES + 1} bytes, limit 65536"


def test_every_event_type_has_a_valid_seed() -> None:
    """The mutation templates are themselves valid, so near-valid records are near."""
    engine = Engine()
    for raw in seed_records():
        assert not isinstance(decode(raw), Rejection), raw
        assert engine.process(raw).applied, raw
    assert {json.loads(r)["type"] for r in seed_records()} == set(TEMPLATES)


# -- atheris (coverage-guided; in the test extra) ------------------------------------------------

FUZZ_SECONDS = int(os.environ.get("STAKEWATCH_FUZZ_SECONDS", "5"))


def test_atheris_finds_nothing_in_a_short_run(tmp_path: Path) -> None:
    """A few seconds of libFuzzer over decode + Engine.process, from the seed corpus; a
    crash leaves its input in tmp_path (the `crash-*` file) and fails here."""
    assert importlib.util.find_spec("atheris") is not None, "atheris is in the test extra"
    script = ROOT / "tests" / "fuzz" / "fuzz_decode.py"
    done = subprocess.run(
        [
            sys.executable,
            str(script),
            f"-max_total_time={FUZZ_SECONDS}",
            "-seed=1",
            f"-artifact_prefix={tmp_path}/",
            "-print_final_stats=1",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=FUZZ_SECONDS + 120,
        check=False,
    )
    tail = "\n".join(done.stderr.splitlines()[-30:])
    assert done.returncode == 0, tail
    assert not list(tmp_path.glob("crash-*")), tail
    assert "stat::number_of_executed_units" in done.stderr, tail
