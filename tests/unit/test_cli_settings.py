"""A bad setting stops a Kafka command before it connects: exit 2, one line naming it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "tests" / "fixtures" / "scale-ai-2025.ndjson"


def _stakewatch(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
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


@pytest.mark.parametrize(
    "args",
    [["replay", str(SEED)], ["alerts"], ["topics", "create"], ["broker"]],
    ids=["replay", "alerts", "topics", "broker"],
)
def test_a_bad_stakewatch_broker_exits_2_naming_it(args: list[str]) -> None:
    done = _stakewatch(*args, STAKEWATCH_BROKER="http://kafka:9092")
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert "STAKEWATCH_BROKER='http://kafka:9092': unsupported scheme 'http'" in done.stderr
    assert done.stdout == ""


def test_a_bad_broker_option_is_named_as_the_option() -> None:
    done = _stakewatch("alerts", "--broker", "kafka://nohost")
    assert done.returncode == 2
    assert "--broker='kafka://nohost': bad broker address" in done.stderr
    assert done.stderr.count("\n") == 1


def test_an_unusable_data_dir_exits_2_naming_stakewatch_data_dir(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    done = _stakewatch("replay", str(SEED), STAKEWATCH_DATA_DIR=str(blocker / "sub"))
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("STAKEWATCH_DATA_DIR:")
    assert done.stderr.count("\n") == 1


def test_follow_and_until_idle_exclude_each_other() -> None:
    done = _stakewatch("alerts", "--follow", "--until-idle", "3")
    assert done.returncode == 2
    assert "--follow and --until-idle" in done.stderr


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"STAKEWATCH_WEBHOOK_URL": "https://hooks.example/T0K3N"}, "STAKEWATCH_WEBHOOK_SECRET"),
        ({"STAKEWATCH_SLACK_WEBHOOK_URL": "hooks.slack.com/x"}, "STAKEWATCH_SLACK_WEBHOOK_URL"),
        ({"STAKEWATCH_ALERTS_CONFIG": "/nonexistent/alerts.toml"}, "STAKEWATCH_ALERTS_CONFIG"),
    ],
    ids=["webhook-without-secret", "slack-url-not-http", "routing-file-missing"],
)
def test_worker_with_a_bad_alert_setting_exits_2_naming_it(env: dict[str, str], named: str) -> None:
    """Before any broker is touched (STAKEWATCH_BROKER points nowhere), and without the
    secret's value."""
    done = _stakewatch("worker", STAKEWATCH_BROKER="kafka://127.0.0.1:9", **env)
    assert done.returncode == 2, done.stderr
    assert named in done.stderr.splitlines()[0], done.stderr
    assert "T0K3N" not in done.stderr and "hooks.slack.com/x" not in done.stderr
