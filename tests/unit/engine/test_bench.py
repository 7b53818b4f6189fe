"""The engine benchmark measures what it says (no timing asserted)."""

from __future__ import annotations

import pytest

from streams.bench.engine import engine_throughput, figure_rows, ownership_event_cost, state_rss


def test_engine_throughput_reports_its_stream_parameters_and_alerts():
    """The figure comes with the generator's parameters and the alert count it produced."""
    fig = engine_throughput(3_000, seed=3)
    assert fig["value"] > 0 and fig["unit"] == "events/s"
    assert fig["params"]["events"] == 3_000 and fig["params"]["seed"] == 3
    assert fig["params"]["mix"]["spend"] == 0.8


def test_ownership_cost_probes_only_ownership_events():
    """Every probe is an ownership event on the built graph; p99 is at least the median."""
    fig = ownership_event_cost(2_000, 2_000, probes=300)
    assert fig["params"]["probes"] == 300
    assert 0 < fig["p50_ms"] <= fig["p99_ms"]


def test_state_rss_reports_the_state_it_built_and_its_scale():
    """The combined-state figure says what it holds and how it was scaled to a million."""
    fig = state_rss(2_000, 2_000, 2_000)
    params = fig["params"]
    assert params["entities"] == 2_000 and params["contracts"] == 2_000
    assert 1_900 <= params["holdings"] <= 2_000  # a few generated holdings re-price a pair
    assert params["scaled_to_million"] == 500
    assert fig["per_million_mb"] == pytest.approx(fig["state_mb"] * 500, abs=500 * 0.05 + 0.1)


def test_every_figure_row_names_its_parameters():
    """The table rows carry, beside each figure, the generator parameters behind it."""
    doc = {
        "figures": {
            "engine_events_per_s": 1,
            "ownership_event_p50_ms": 0.1,
            "ownership_event_p99_ms": 0.2,
            "rss_mb_per_million": 3.0,
            "state_rss_mb_per_million": 4.0,
        },
        "details": {
            "engine_throughput": engine_throughput(2_000, seed=3),
            "ownership_event": {"2000": ownership_event_cost(2_000, 2_000, probes=50)},
            "state_rss": state_rss(1_000, 1_000, 1_000),
        },
    }
    rows = figure_rows(doc)
    assert [name for name, _, _ in rows] == list(doc["figures"])
    assert all(params for _, _, params in rows)
    assert "events=2,000" in rows[0][2] and "seed=3" in rows[0][2]
    assert "contracts=1,000" in rows[-1][2]


def test_isolated_figures_come_from_a_fresh_interpreter():
    """Memory figures run in a child interpreter and come back as plain JSON."""
    from streams.bench.engine import _isolated

    fig = _isolated("state_rss", entities=300, holdings=300, contracts=300)
    assert fig["params"]["contracts"] == 300 and fig["peak_rss_mb"] > 0
