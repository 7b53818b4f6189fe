"""The engine benchmark measures what it says (no timing asserted)."""

from __future__ import annotations

from streams.bench import engine_throughput, ownership_event_cost


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
