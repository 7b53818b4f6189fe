"""`stakewatch backtest` as a user runs it: a real subprocess on files and stdin."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SEED = Path(__file__).resolve().parents[2] / "fixtures" / "scale-ai-2025.ndjson"


def _backtest(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "streams", "backtest", *args],
        input=stdin,
        capture_output=True,
        timeout=60,
        check=False,
    )


def test_seed_backtest_prints_the_google_firing_and_resolution_as_json_lines():
    """stdout holds only alert records; the summary goes to stderr."""
    proc = _backtest(str(SEED))
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    google = [
        (r["status"], r["event_id"]) for r in records if r["dedup_key"] == "google|scale-ai|meta"
    ]
    assert google == [("firing", "seed-0074"), ("resolved", "seed-0075")]
    assert b"events read 80" in proc.stderr and b"alerts 6" in proc.stderr


def test_bad_lines_are_dead_lettered_with_original_bytes_and_processing_goes_on(tmp_path):
    """Garbage between good lines is written to --dead-letter; the good lines still alert."""
    seed = SEED.read_bytes().splitlines()
    bad = [b"{not json", b'{"type":"merger.rumoured"}', b"\xff\xfe", b"[]"]
    stream = b"\n".join(seed[:40] + bad + seed[40:]) + b"\n"
    dl = tmp_path / "dead.ndjson"
    proc = _backtest("-", "--dead-letter", str(dl), stdin=stream)
    assert proc.returncode == 0
    assert b"google|scale-ai|meta" in proc.stdout
    letters = [json.loads(x) for x in dl.read_text().splitlines()]
    assert [x["code"] for x in letters] == [
        "invalid_json",
        "unknown_type",
        "invalid_json",
        "invalid_json",
    ]
    assert letters[0]["original"] == "{not json" and letters[0]["line"] == 41
    assert letters[2]["original_base64"] == "//4="
    assert all(x["reason"].startswith(x["code"] + ": ") for x in letters)
    assert b"rejected 4" in proc.stderr


def test_unreadable_file_exits_non_zero():
    """A file that cannot be read is the one case with a non-zero exit."""
    proc = _backtest("/nonexistent/events.ndjson")
    assert proc.returncode != 0 and b"cannot read" in proc.stderr


def test_bad_config_fails_naming_the_setting(tmp_path):
    """--config with a wrong value stops before reading, naming the setting."""
    cfg = tmp_path / "rules.toml"
    cfg.write_text('threshold = "high"\n')
    proc = _backtest(str(SEED), "--config", str(cfg))
    assert proc.returncode == 2 and b"threshold" in proc.stderr


def test_future_is_judged_against_now_and_years_between_events_are_kept(tmp_path):
    """A register's sparse history (2019, 2021, 2023) is applied whole; an event dated more
    than a day after the reading (--now, else the clock) is rejected as `future`."""

    def stake(n: int, time: str, percent: int) -> str:
        data = {"owner": "meta", "asset": "scale-ai", "percent": percent}
        return json.dumps(
            {"specversion": "1.0", "id": f"h-{n}", "source": "/register",
             "type": "ownership.stake", "time": time, "data": data}
        )  # fmt: skip

    history = [
        stake(n, f"{year}-01-01T00:00:00Z", 10 + n) for n, year in enumerate((2019, 2021, 2023))
    ]
    history.append(stake(9, "2031-01-02T00:00:00Z", 40))
    events = tmp_path / "history.ndjson"
    events.write_text("\n".join(history) + "\n")
    dl = tmp_path / "dead.ndjson"
    proc = _backtest(str(events), "--dead-letter", str(dl))
    assert proc.returncode == 0, proc.stderr
    assert b"applied 3" in proc.stderr and b"future 1" in proc.stderr
    assert [json.loads(x)["line"] for x in dl.read_text().splitlines()] == [4]
    proc = _backtest(str(events), "--now", "2031-01-01T00:00:00Z")
    assert proc.returncode == 0 and b"applied 4" in proc.stderr, proc.stderr
    proc = _backtest(str(events), "--now", "yesterday")
    assert proc.returncode == 2 and b"--now" in proc.stderr
