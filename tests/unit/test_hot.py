"""The hot path runs compiled where the install could build it, and from its sources
otherwise, with the same behaviour (setup.py, streams/hot.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from streams import hot

ROOT = Path(__file__).resolve().parents[2]


def _run(code: str, **env: str) -> str:
    environment = {k: v for k, v in os.environ.items() if k != "STAKEWATCH_PURE"}
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**environment, **env},
        cwd=ROOT,
        timeout=120,
        check=True,
    )
    return done.stdout.strip()


def test_the_install_compiled_every_hot_module():
    """make test installs with a C compiler and mypyc: every hot module is an extension."""
    out = _run(
        "import importlib; from streams import hot; "
        "print(*(importlib.import_module(m).__file__ for m in hot.HOT_MODULES))"
    )
    files = out.split()
    assert len(files) == len(hot.HOT_MODULES)
    assert all(not f.endswith(".py") for f in files), files


def test_stakewatch_pure_runs_every_hot_module_from_its_source():
    out = _run(
        "import importlib; from streams import hot; "
        "print(hot.compiled(), *(importlib.import_module(m).__file__ for m in hot.HOT_MODULES))",
        STAKEWATCH_PURE="1",
    )
    flag, *files = out.split()
    assert flag == "False"
    assert [Path(f).relative_to(ROOT).as_posix() for f in files] == [
        m.replace(".", "/") + ".py" for m in hot.HOT_MODULES
    ]


def test_the_sources_pass_the_engine_and_worker_tests():
    """The pure-Python path is the same program: the engine's, the decoder's and the worker's
    unit tests (the property tests against the reference among them) pass on it too."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/unit/engine",
            "tests/unit/agents",
            "tests/unit/test_property_engine.py",
            "tests/unit/test_reference.py",
            "tests/unit/test_fuzz_decode.py",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "STAKEWATCH_PURE": "1"},
        cwd=ROOT,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:]
    assert " passed" in done.stdout and " failed" not in done.stdout


def test_stale_names_a_compiled_module_older_than_its_source(tmp_path, monkeypatch):
    monkeypatch.setattr(hot, "_ROOT", tmp_path)
    name = hot.HOT_MODULES[0]
    source = tmp_path / (name.replace(".", "/") + ".py")
    source.parent.mkdir(parents=True)
    source.write_text("")
    extension = hot._extension(name)
    extension.write_bytes(b"")
    assert hot.stale() == []  # as new as its source
    later = time.time() + 10
    os.utime(source, (later, later))
    assert hot.stale() == [name]
    extension.unlink()
    assert hot.stale() == []  # no compiled build: the source runs, nothing is stale


def test_a_snapshot_of_the_other_build_is_never_restored(monkeypatch):
    """Compiled and pure-Python classes pickle differently: a worker chooses only markers
    written by its own build (a pure worker restoring a compiled snapshot, or the other way
    round, would get objects with fields missing)."""
    from streams.agents.checkpoints import snapshot_rules
    from streams.agents.snapshots import Marker, usable_marker
    from streams.engine import EngineConfig

    config = EngineConfig()
    monkeypatch.setattr(hot, "compiled", lambda: True)
    compiled_rules = snapshot_rules(config)
    monkeypatch.setattr(hot, "compiled", lambda: False)
    source_rules = snapshot_rules(config)
    assert compiled_rules != source_rules
    assert compiled_rules.startswith(config.fingerprint())
    marker = Marker(
        offset=0,
        snapshot_id="w:1",
        worker="w",
        chunks=(0,),
        positions={},
        leases=frozenset(range(8)),
        created=0.0,
        rules=compiled_rules,
    )
    assert usable_marker(marker, compiled_rules, "")
    assert not usable_marker(marker, source_rules, "")
