"""`stakewatch demo` runs the seed case through the embedded broker and a real worker."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest
from rich.console import Console

from streams.demo import run_demo
from streams.kafka.running import user_state_dir

pytestmark = pytest.mark.integration


async def test_demo_renders_the_google_conflict_firing_and_resolving(monkeypatch, tmp_path):
    """The critical Google panel with the path and money, then its resolution."""
    monkeypatch.delenv("STAKEWATCH_BROKER", raising=False)
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    shown = await run_demo(pace=0, follow=False, console=Console(file=out, width=120))
    text = out.getvalue()
    assert shown == 6
    assert "CRITICAL · google|scale-ai|meta" in text
    assert "meta —49%→ scale-ai" in text and "$150.0M" in text
    assert "RESOLVED" in text.upper() and "c-google-scale-2024" in text
    assert "80 events applied, 6 alert records, 2 conflicts open" in text
    assert not (tmp_path / ".stakewatch").exists(), "the demo must not touch the user's data dir"
    assert not user_state_dir().exists(), "nor the per-user one, nor the list of running brokers"


def test_demo_command_exits_cleanly(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "STAKEWATCH_BROKER"}
    done = subprocess.run(
        [sys.executable, "-m", "streams", "demo", "--pace", "0", "--once"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**env, "COLUMNS": "120"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "google|scale-ai|meta" in done.stdout
