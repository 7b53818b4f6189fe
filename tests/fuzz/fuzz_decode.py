"""Coverage-guided fuzzing (atheris/libFuzzer) of ``decode`` and ``Engine.process``.

On demand, for as long as you like (libFuzzer flags pass through)::

    python tests/fuzz/fuzz_decode.py -max_total_time=600 -artifact_prefix=/tmp/ /tmp/corpus

CI runs it for a few seconds (tests/unit/test_fuzz_decode.py). A failing input is written
as ``crash-<sha1>``; replay it with ``python tests/fuzz/fuzz_decode.py crash-<sha1>``.
The corpus directory is seeded with a valid record of every type, so mutations start near
the shapes the fast path parses. The invariants are those of tests/fuzz/hostile.py.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import atheris

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

with atheris.instrument_imports(include=["streams"]):
    from streams.engine import Engine
    from streams.events.fast import fast_decode  # noqa: F401 - instrumented for coverage

from tests.fuzz.hostile import check_decode, check_engine, seed_records  # noqa: E402


def _with_a_conflict() -> Engine:
    """Rivals, a contract, spend and a 49 % holding: one conflict open, so inputs that
    move time or touch these entities make the engine emit and resolve records."""
    engine = Engine()
    for raw in seed_records()[:5]:
        engine.process(raw)
    assert engine.open, "the seed should open google|scale-ai|meta"
    return engine


_engine = _with_a_conflict()


def one_input(data: bytes) -> None:
    """Each input through decode, and through an engine with a conflict open."""
    global _engine
    check_decode(data)
    check_engine(_engine, data)
    if not _engine.open or len(_engine.seen) > 10_000:  # keep something to resolve
        _engine = _with_a_conflict()


def main() -> None:
    args = list(sys.argv)
    if not any(not a.startswith("-") for a in args[1:]):  # no corpus dir or input given
        corpus = Path(tempfile.mkdtemp(prefix="stakewatch-fuzz-"))
        for i, raw in enumerate(seed_records()):
            (corpus / f"seed-{i}").write_bytes(raw)
        args.append(str(corpus))
    atheris.Setup(args, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
