"""The pieces of the stream bench that decide what is measured (no broker, no timing)."""

from __future__ import annotations

import pytest

from streams.bench.generate import StreamParams, generate
from streams.bench.stream import _rate, _route, percentiles
from streams.events import decode
from streams.kafka.replay import event_time_ms
from streams.kafka.topics import TopicNames, route


def test_the_fast_router_puts_each_generated_event_where_replay_would():
    """Every contender reads what `stakewatch replay` would have published: same topic,
    key and event-time stamp, for every kind of event the generator makes."""
    names = TopicNames("b")
    kinds = set()
    for raw in generate(StreamParams(events=3_000, seed=5)):
        event = decode(raw)
        topic, key = route(names, event)
        fast_topic, fast_key, stamp, doc = _route(raw, names)
        assert (fast_topic, fast_key, stamp) == (topic, key, event_time_ms(event.time))
        kinds.add(doc["type"])
    assert {"spend.recorded", "contract.signed", "ownership.stake", "rivalry.declared"} <= kinds


def test_percentiles_are_observed_samples_by_nearest_rank():
    samples = [float(x) for x in range(1, 201)]  # 1..200 ms
    p = percentiles(samples)
    assert (p["p50"], p["p95"], p["p99"], p["max"]) == (100.0, 190.0, 198.0, 200.0)
    assert percentiles([]) == {"p50": None, "p95": None, "p99": None, "max": None}


def test_the_rate_counts_only_records_after_the_first_observation():
    """A contender that applies a fetched batch before anyone can look is timed over the
    records processed after the first look, never credited with the first batch."""
    fig = _rate(
        {"started": 0.0, "first": 10.0, "first_count": 1_000, "done": 12.0, "processed": 5_000},
        5_000,
    )
    assert fig["value"] == 2_000 and fig["seconds"] == 2.0 and fig["wall_s"] == 12.0
    assert fig["cpu_s"] is None and fig["cores"] is None  # no CPU stamps: none made up


def test_cpu_is_taken_over_the_same_span_as_the_rate():
    """A process that kept 1.5 cores busy for the 2 s of 4,000 counted records."""
    fig = _rate(
        {
            "first": 10.0,
            "first_count": 1_000,
            "done": 12.0,
            "processed": 5_000,
            "cpu_first": 7.0,
            "cpu_done": 10.0,
        },
        5_000,
    )
    assert fig["cpu_s"] == 3.0 and fig["cores"] == 1.5 and fig["cpu_us_per_event"] == 750.0
    assert _rate({"first": None, "done": 1.0, "processed": 0}, 10)["value"] is None


@pytest.mark.parametrize("field", ["first", "done"])
def test_a_contender_that_never_finished_has_no_rate(field):
    result = {"started": 0.0, "first": 1.0, "done": 2.0, "processed": 10}
    result[field] = None
    assert _rate(result, 10)["value"] is None
