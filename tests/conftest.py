"""Every test gets its own per-user state directory (``XDG_STATE_HOME``).

The default data dir and the list of running brokers and workers live there
(``streams.kafka.running``); a test must neither read the person's real ones nor see another
test's processes, and subprocesses inherit the variable. Session-scoped fixtures, set up
before any test's own directory, get one for the session.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

os.environ["XDG_STATE_HOME"] = tempfile.mkdtemp(prefix="stakewatch-test-state-")


def pytest_sessionstart(session: pytest.Session) -> None:
    """A compiled hot path older than its source would test yesterday's code (setup.py)."""
    from streams import hot

    if not os.environ.get("STAKEWATCH_PURE") and (stale := hot.stale()):
        pytest.exit(
            f"{', '.join(stale)}: compiled build older than the source; reinstall "
            "(pip install -e . — make test does) or run with STAKEWATCH_PURE=1",
            returncode=4,
        )


@pytest.fixture(autouse=True)
def _own_state_dir(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    state = tmp_path_factory.mktemp("xdg-state")
    monkeypatch.setenv("XDG_STATE_HOME", str(state))
    return state
