"""What a newcomer reads from the CLI itself: version, help, errors, skipped lines, and where
its data and the list of running processes live (issue #14)."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from streams.kafka.running import hidden_from, register, registry_dir, running, unregister
from streams.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "streams" / "scenarios" / "scale-ai-2025.ndjson"


def stakewatch(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("STAKEWATCH_")}
    return subprocess.run(
        [sys.executable, "-m", "streams", *args],
        env={**clean, "PYTHONPATH": str(ROOT), **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_version_prints_the_installed_version() -> None:
    done = stakewatch("--version")
    assert done.returncode == 0
    assert done.stdout == f"stakewatch {version('stakewatch')}\n"


def test_a_bad_rule_setting_starts_with_the_settings_name(tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text("[rules]\nthreshold = 200\n")
    done = stakewatch("backtest", str(SEED), "--config", str(rules))
    assert done.returncode == 2
    assert done.stderr == "rules.threshold: must be in (0, 100], got 200.0\n"


def test_help_texts_are_not_broken_mid_sentence() -> None:
    """Docstrings are wrapped at the source's width; help re-wraps them to the terminal."""
    wide = {"COLUMNS": "250", "TERM": "dumb"}
    listing = stakewatch("--help", **wide).stdout
    assert "Measure throughput, latency, recovery and rebuild figures (docs/performance.md)." in (
        listing
    )
    assert "beside a raw\n" not in listing
    replay = stakewatch("replay", "--help", **wide).stdout
    assert "original bytes and the reason, and each is named on stderr" in replay


def test_explain_and_whatif_say_which_lines_they_skipped(tmp_path: Path) -> None:
    events = tmp_path / "events.ndjson"
    events.write_bytes(SEED.read_bytes() + b"{oops\n\n" + b'{"type": "merger.rumoured"}\n')
    explained = stakewatch(
        "explain", str(events), "--client", "openai", "--vendor", "scale-ai", "--rival", "meta"
    )
    assert explained.returncode == 0, explained.stderr
    assert f"{events}:81: invalid_json: " in explained.stderr
    assert f"{events}:83: unknown_type: unknown type 'merger.rumoured'" in explained.stderr
    assert f"skipped 2 of 82 lines of {events}" in explained.stderr
    hypothesis = tmp_path / "what.ndjson"
    hypothesis.write_text('{"type": "contract.terminated", "data": {"contract_id": "c-x"}}\n')
    whatif = stakewatch("whatif", str(events), str(hypothesis))
    assert whatif.returncode == 0, whatif.stderr
    assert f"{events}:81: invalid_json: " in whatif.stderr


def test_the_default_data_dir_is_the_users_state_dir(tmp_path: Path, monkeypatch) -> None:
    """Not relative to the working directory: every shell of one user finds the same one."""
    monkeypatch.delenv("STAKEWATCH_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    monkeypatch.chdir(ROOT / "docs")
    assert load_settings().data_dir == tmp_path / "stakewatch"
    monkeypatch.setenv("STAKEWATCH_DATA_DIR", "/srv/sw")
    assert load_settings().data_dir == Path("/srv/sw")


def test_the_running_list_keeps_live_processes_and_drops_dead_ones(tmp_path: Path) -> None:
    me = os.getpid()
    dead = _dead_pid()
    mine = register("broker", bootstrap="127.0.0.1:1", data_dir=tmp_path, embedded=True, pid=me)
    register("worker", bootstrap="kafka:9092", data_dir=tmp_path, embedded=False, pid=dead)
    assert [(r.role, r.pid) for r in running()] == [("broker", me)]
    assert sorted(p.name for p in registry_dir().glob("*.json")) == [mine.name]
    unregister(mine)
    assert running() == []


def test_a_private_broker_would_be_hidden_from_workers_elsewhere(tmp_path: Path) -> None:
    """Other data dirs and external brokers count; this data dir and this process do not."""
    here, there = tmp_path / "here", tmp_path / "there"
    parent = os.getppid()
    register("broker", bootstrap="127.0.0.1:2", data_dir=here, embedded=True, pid=parent)
    assert hidden_from(here) == []
    assert [r.data_dir for r in hidden_from(there)] == [str(here)]
    register("worker", bootstrap="kafka:9092", data_dir=here, embedded=False, pid=1)
    assert {r.role for r in hidden_from(here)} == {"worker"}
    register("worker", bootstrap="127.0.0.1:3", data_dir=there, embedded=True, pid=os.getpid())
    assert {r.role for r in hidden_from(here)} == {"worker"}


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


@pytest.fixture(autouse=True)
def _no_leftovers() -> None:
    for path in registry_dir().glob("*.json"):
        path.unlink()
