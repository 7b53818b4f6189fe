"""`stakewatch bench --quick` end to end: every figure is measured and reported (the figures
are printed, never asserted against targets: timing thresholds do not belong in tests)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REQUIRED = (
    "worker_events_per_s",
    "faust_naive_events_per_s",
    "raw_consumer_events_per_s",
    "quix_events_per_s",
    "alert_latency_p50_ms",
    "alert_latency_p99_ms",
    "alert_http_latency_p99_ms",
    "engine_events_per_s",
    "ownership_event_p50_ms",
    "ownership_event_p99_ms",
    "rss_mb_per_million",
    "recovery_s",
    "rebuild_s",
    "rebuild_events_per_s",
    "rebuild_vs_read_parse",
    "rebuild_peak_rss_mb",
    "read_parse_events_per_s",
    "backtest_vs_read_parse",
)


@pytest.mark.timeout(600)
def test_quick_bench_reports_every_figure_with_its_comparison(tmp_path: Path):
    """One quick run: the issue's keys are all there and positive (Quix may be null, with a
    reason, where the bench extra is not installed), the ratios are taken from the same
    run, and each peer really summed every spend event."""
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "-m", "streams", "bench", "--quick", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=590,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "stakewatch bench" in done.stdout  # the table
    doc = json.loads(out.read_text())
    figures = doc["figures"]
    for key in REQUIRED:
        assert key in figures, key
        if key == "quix_events_per_s" and figures[key] is None:
            assert doc["figure_details"][key]["reason"]
            continue
        assert isinstance(figures[key], int | float) and figures[key] > 0, (key, figures[key])
    assert figures["backtest_vs_read_parse"] == pytest.approx(
        figures["engine_events_per_s"] / figures["read_parse_events_per_s"], rel=0.01
    )
    rebuild = doc["details"]["stream"]["rebuild"]
    assert figures["rebuild_vs_read_parse"] == pytest.approx(
        figures["rebuild_events_per_s"] / rebuild["params"]["read_parse_events_per_s"], rel=0.01
    )
    ratios = doc["ratios"]
    assert ratios["worker_vs_faust_naive"] == pytest.approx(
        figures["worker_events_per_s"] / figures["faust_naive_events_per_s"], rel=0.01
    )
    throughput = doc["details"]["stream"]["throughput"]
    published = doc["details"]["stream"]["published"]
    assert throughput["worker"]["processed"] == published["events"]
    assert throughput["worker"]["counts"].get("rejected", 0) == 0
    assert throughput["faust_naive"]["sum_matches"]
    if figures["quix_events_per_s"] is not None:
        assert throughput["quix"]["sum_matches"]
    # The recovery figure is a restore, not a replay: the first recovery worker starts from
    # the throughput worker's final snapshot, its successor replays at most the tail.
    stream = doc["details"]["stream"]
    assert stream["first_replayed"] == 0
    tail = stream["recovery"]["params"]["tail_after_snapshot"]
    assert stream["recovery"]["restored"] and 0 <= stream["recovery"]["replayed"] <= tail
    latency = doc["details"]["stream"]["latency"]
    assert 0 < latency["topic"]["samples"] <= 200 and 0 < latency["http"]["samples"] <= 200
    for name, detail in doc["figure_details"].items():
        assert "params" in detail, name


@pytest.mark.timeout(300)
def test_rebuild_events_measures_a_rebuild_of_that_size(tmp_path: Path):
    """`--rebuild-events N` alone: N generated events published, a reset marker, a fresh
    worker that applies every one of them; its time, rate, ratio and memory reported."""
    out = tmp_path / "rebuild.json"
    done = subprocess.run(
        [sys.executable, "-m", "streams", "bench", "--rebuild-events", "5000", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    doc = json.loads(out.read_text())
    figures = doc["figures"]
    assert set(figures) == {
        "rebuild_s",
        "rebuild_events_per_s",
        "rebuild_vs_read_parse",
        "rebuild_peak_rss_mb",
    }
    rebuild = doc["details"]["rebuild"]
    assert rebuild["params"]["published"] == 5000
    assert rebuild["params"]["events"] == 5000  # every event applied by the rebuilding worker
    assert figures["rebuild_events_per_s"] == pytest.approx(5000 / figures["rebuild_s"], rel=0.01)
    assert 0 < figures["rebuild_vs_read_parse"] < 1 and figures["rebuild_peak_rss_mb"] > 20
