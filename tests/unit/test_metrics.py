"""The worker's metrics: names, bounded labels, the top-N rule, and the /metrics endpoint."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from streams.events import EVENT_TYPES as SCHEMA_EVENT_TYPES
from streams.metrics import (
    CONTENT_TYPE,
    DEAD_LETTER_REASONS,
    EVENT_TYPES,
    OTHER,
    Metrics,
    bound_top_n,
    sample_names_of,
    summarize_exposure,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def metrics() -> Metrics:
    return Metrics(CollectorRegistry(), version="1.2.3", clock=lambda: 1_700_000_000.0)


def families(m: Metrics) -> dict[str, object]:
    return {f.name: f for f in text_string_to_metric_families(m.render().decode())}


def samples(m: Metrics, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Sample values of one sample name, keyed by their sorted labels."""
    out = {}
    for family in text_string_to_metric_families(m.render().decode()):
        for s in family.samples:
            if s.name == name:
                out[tuple(sorted(s.labels.items()))] = s.value
    return out


def conflict(client, vendor, rival, spend, *, severity="high", stake=30.0, pending=False):
    return {
        "client": client,
        "vendor": vendor,
        "rival": rival,
        "severity": severity,
        "stake": stake,
        "pending": pending,
        "spend_365d": spend,
    }


def exercise(m: Metrics) -> None:
    """Touch every method once, so that every labelled family has samples."""
    m.observe_applied("stakewatch.ownership", "ownership.stake", 0.05)
    m.observe_rejected("stakewatch.spend", None, "schema")
    m.observe_duplicate("stakewatch.spend", "spend.recorded")
    m.observe_redelivered("stakewatch.spend", "spend.recorded")
    m.observe_dead_letter("stakewatch.reference", "invalid_json")
    m.observe_alert("firing", "critical", 0.2)
    m.set_conflicts([conflict("google", "scale-ai", "meta", 1.5e8, severity="critical")])
    m.observe_delivery("pagerduty", "delivered")
    m.observe_delivery_retry("slack")
    m.set_delivery_queue_depth("slack", 3)
    m.set_consumer_lag({"stakewatch.spend": 12})
    m.set_table_sizes({"engine": 1})
    m.observe_rebalance()
    m.set_recovery_state("running")


def test_every_exported_name_is_prefixed_and_the_exposition_parses(metrics: Metrics) -> None:
    exercise(metrics)
    names = set(families(metrics))
    assert names, "nothing rendered"
    assert all(n.startswith("stakewatch_") for n in names), sorted(names)
    assert {
        "stakewatch_events_consumed",
        "stakewatch_dead_letters",
        "stakewatch_processing_latency_seconds",
        "stakewatch_event_to_alert_latency_seconds",
        "stakewatch_open_conflicts",
        "stakewatch_rival_spend_at_risk_usd",
        "stakewatch_client_spend_at_risk_usd",
        "stakewatch_rival_open_conflicts",
        "stakewatch_client_open_conflicts",
        "stakewatch_top_conflict_spend_at_risk_usd",
        "stakewatch_top_conflict_stake_percent",
        "stakewatch_alert_deliveries",
        "stakewatch_alert_delivery_retries",
        "stakewatch_alert_delivery_queue_depth",
        "stakewatch_consumer_lag_records",
        "stakewatch_table_entries",
        "stakewatch_overallocated_assets",
        "stakewatch_rebalances",
        "stakewatch_recovery_state",
        "stakewatch_build_info",
    } <= names


def test_sample_names_cover_what_render_emits(metrics: Metrics) -> None:
    exercise(metrics)
    rendered = {
        s.name for f in text_string_to_metric_families(metrics.render().decode()) for s in f.samples
    }
    assert rendered <= metrics.sample_names()
    # Known before anything happened, so that dashboards can be checked against a fresh worker.
    fresh = Metrics(CollectorRegistry()).sample_names()
    # The same names come out of a parsed scrape (the integration test scrapes a real worker).
    parsed = text_string_to_metric_families(metrics.render().decode())
    assert sample_names_of(parsed) == metrics.sample_names() == fresh
    assert {
        "stakewatch_events_consumed_total",
        "stakewatch_processing_latency_seconds_bucket",
    } <= fresh


def test_events_are_counted_by_topic_type_and_outcome(metrics: Metrics) -> None:
    exercise(metrics)
    consumed = samples(metrics, "stakewatch_events_consumed_total")
    key = (("outcome", "applied"), ("topic", "stakewatch.ownership"), ("type", "ownership.stake"))
    assert consumed[key] == 1
    undecodable = (("outcome", "rejected"), ("topic", "stakewatch.spend"), ("type", OTHER))
    assert consumed[undecodable] == 1
    dead = samples(metrics, "stakewatch_dead_letters_total")
    assert dead[(("reason", "schema"), ("topic", "stakewatch.spend"))] == 1
    assert samples(metrics, "stakewatch_last_event_consumed_timestamp_seconds") == {(): 1.7e9}


def test_a_rejection_another_worker_dead_letters_is_consumed_but_not_a_dead_letter(
    metrics: Metrics,
) -> None:
    # Every worker reads every record; only the partition's lease holder writes the dead
    # letter, so only it counts one, and the sum over workers counts each dead letter once.
    metrics.observe_rejected("stakewatch.spend", "spend.recorded", "schema", dead_lettered=False)
    metrics.observe_rejected("stakewatch.spend", "spend.recorded", "schema")
    consumed = samples(metrics, "stakewatch_events_consumed_total")
    assert consumed == {
        (("outcome", "rejected"), ("topic", "stakewatch.spend"), ("type", "spend.recorded")): 2
    }
    assert samples(metrics, "stakewatch_dead_letters_total") == {
        (("reason", "schema"), ("topic", "stakewatch.spend")): 1
    }


def test_unexpected_label_values_fold_into_other_instead_of_raising(metrics: Metrics) -> None:
    metrics.observe_rejected("t", "made.up", "no-such-reason")
    metrics.observe_delivery("slack", "exploded")
    metrics.observe_alert("weird", "apocalyptic", -3.0)  # negative latency (clock skew) → 0
    assert samples(metrics, "stakewatch_dead_letters_total") == {
        (("reason", OTHER), ("topic", "t")): 1
    }
    consumed = samples(metrics, "stakewatch_events_consumed_total")
    assert consumed == {(("outcome", "rejected"), ("topic", "t"), ("type", OTHER)): 1}
    assert samples(metrics, "stakewatch_alert_deliveries_total") == {
        (("outcome", OTHER), ("receiver", "slack")): 1
    }
    assert samples(metrics, "stakewatch_alerts_total") == {
        (("severity", OTHER), ("status", OTHER)): 1
    }
    assert samples(metrics, "stakewatch_event_to_alert_latency_seconds_sum") == {(): 0.0}


def test_open_ended_labels_keep_only_the_first_few_distinct_values() -> None:
    m = Metrics(CollectorRegistry(), max_label_values=3)
    for i in range(10):
        m.observe_delivery(f"receiver-{i}", "delivered")
    receivers = {dict(k)["receiver"] for k in samples(m, "stakewatch_alert_deliveries_total")}
    assert receivers == {"receiver-0", "receiver-1", "receiver-2", OTHER}
    assert (
        samples(m, "stakewatch_alert_deliveries_total")[
            (("outcome", "delivered"), ("receiver", OTHER))
        ]
        == 7
    )


def test_top_n_keeps_the_watch_list_and_the_largest_and_sums_the_rest() -> None:
    values = {f"r{i:02d}": (float(i), 1) for i in range(30)}
    kept = bound_top_n(values, top_n=3, watch=["r00", "absent"])
    assert set(kept) == {"r00", "absent", "r29", "r28", "r27", OTHER}
    assert kept["absent"] == (0.0, 0)
    assert kept[OTHER] == (float(sum(range(1, 27))), 26)
    # Nothing is lost: the bounded view adds up to the unbounded one.
    assert sum(v[0] for v in kept.values()) == sum(v[0] for v in values.values())
    assert bound_top_n({}, top_n=5) == {OTHER: (0.0, 0)}


def test_ties_in_top_n_are_broken_by_count_then_name() -> None:
    kept = bound_top_n({"b": (5.0, 1), "a": (5.0, 1), "c": (5.0, 2)}, top_n=2)
    assert set(kept) == {"c", "a", OTHER}


def test_exposure_series_are_bounded_and_stale_entities_disappear() -> None:
    m = Metrics(CollectorRegistry(), top_n=5, watch_rivals=["watched"])
    by_rival = {f"rival-{i}": (1000.0 * i, i) for i in range(1, 101)}
    m.set_exposure(by_rival, by_rival)
    rivals = samples(m, "stakewatch_rival_spend_at_risk_usd")
    assert len(rivals) == 5 + 1 + 1
    assert rivals[(("rival", "watched"),)] == 0
    assert rivals[(("rival", "rival-100"),)] == 100_000
    assert rivals[(("rival", OTHER),)] == 1000.0 * sum(range(1, 96))
    assert len(samples(m, "stakewatch_client_open_conflicts")) == 5 + 1  # no client watch list

    m.set_exposure({"rival-1": (1.0, 1)}, {})
    assert set(samples(m, "stakewatch_rival_spend_at_risk_usd")) == {
        (("rival", "watched"),),
        (("rival", "rival-1"),),
        (("rival", OTHER),),
    }


def test_a_clients_spend_counts_each_conflicted_vendor_once() -> None:
    open_conflicts = [
        conflict("google", "scale-ai", "meta", 150e6),
        conflict("google", "scale-ai", "microsoft", 150e6),
        conflict("google", "labelbox", "meta", 10e6),
        conflict("openai", "scale-ai", "meta", 5e6),
    ]
    by_rival, by_client = summarize_exposure(open_conflicts)
    assert by_client == {"google": (160e6, 3), "openai": (5e6, 1)}
    assert by_rival == {"meta": (165e6, 3), "microsoft": (150e6, 1)}


def test_set_conflicts_fills_severities_exposure_and_the_top_conflicts() -> None:
    m = Metrics(CollectorRegistry(), top_conflicts=2)
    m.set_conflicts(
        [
            conflict(
                "google", "scale-ai", "meta", 150e6, severity="critical", stake=49, pending=True
            ),
            conflict("openai", "scale-ai", "meta", 5e6, severity="high"),
            conflict("amazon", "x", "meta", 1e6, severity="warning"),
        ]
    )
    assert samples(m, "stakewatch_open_conflicts") == {
        (("severity", "critical"),): 1,
        (("severity", "high"),): 1,
        (("severity", "warning"),): 1,
    }
    top = samples(m, "stakewatch_top_conflict_spend_at_risk_usd")
    google = (
        ("client", "google"),
        ("pending", "true"),
        ("rival", "meta"),
        ("severity", "critical"),
        ("vendor", "scale-ai"),
    )
    assert top[google] == 150e6
    assert (
        top[tuple((k, OTHER) for k in ("client", "pending", "rival", "severity", "vendor"))] == 1e6
    )
    assert len(top) == 3
    assert samples(m, "stakewatch_top_conflict_stake_percent")[google] == 49

    m.set_conflicts([])  # everything resolved
    assert set(samples(m, "stakewatch_open_conflicts").values()) == {0}
    assert len(samples(m, "stakewatch_top_conflict_spend_at_risk_usd")) == 1  # the _other row
    assert samples(m, "stakewatch_top_conflict_stake_percent") == {}


def test_consumer_lag_drops_topics_no_longer_assigned(metrics: Metrics) -> None:
    metrics.set_consumer_lag({"a": 5, "b": 7})
    metrics.set_consumer_lag({"b": 2})
    assert samples(metrics, "stakewatch_consumer_lag_records") == {(("topic", "b"),): 2}


def test_recovery_state_is_one_hot_and_rejects_unknown_states(metrics: Metrics) -> None:
    metrics.set_recovery_state("recovering")
    states = samples(metrics, "stakewatch_recovery_state")
    assert {dict(k)["state"]: v for k, v in states.items()} == {
        "starting": 0,
        "recovering": 1,
        "running": 0,
        "stopping": 0,
    }
    with pytest.raises(ValueError, match="recovery state"):
        metrics.set_recovery_state("confused")


def test_build_info_carries_version_and_python(metrics: Metrics) -> None:
    ((labels, value),) = samples(metrics, "stakewatch_build_info").items()
    assert dict(labels)["version"] == "1.2.3"
    assert re.fullmatch(r"3\.\d+\.\d+", dict(labels)["python"])
    assert value == 1


def test_label_sets_match_the_event_schema_and_the_documented_rejection_codes() -> None:
    assert set(EVENT_TYPES) == set(SCHEMA_EVENT_TYPES)
    decisions = (ROOT / "docs" / "decisions.md").read_text()
    section = decisions.split("## Rejections", 1)[1].split("\n## ", 1)[0]
    documented = re.findall(r"^\| `([a-z_]+)` \|", section, flags=re.MULTILINE)
    assert documented, "rejection table not found in docs/decisions.md"
    assert set(DEAD_LETTER_REASONS) == set(documented)


async def test_the_aiohttp_handler_serves_the_text_format(metrics: Metrics) -> None:
    exercise(metrics)
    app = web.Application()
    app.router.add_get("/metrics", metrics.aiohttp_handler())
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/metrics")
        assert response.status == 200
        assert response.headers["Content-Type"] == CONTENT_TYPE
        body = await response.text()
    assert 'stakewatch_open_conflicts{severity="critical"} 1.0' in body


def test_a_batch_counts_and_observes_exactly_what_one_call_per_event_would() -> None:
    """The worker hands metrics over once per batch (observe_applied_batch, observe_many);
    the exposition must not tell the difference."""
    events = [
        ("stakewatch.spend", "spend.recorded", 0.004),
        ("stakewatch.spend", "spend.recorded", 0.25),
        ("stakewatch.spend", "spend.recorded", -0.5),  # a clock behind the producer's
        ("stakewatch.ownership", "ownership.stake", 0.005),  # exactly on a bucket bound
        ("stakewatch.ownership", "ownership.stake", 3600.0),  # beyond the last bound
    ]
    one, batch = (
        Metrics(CollectorRegistry(), clock=lambda: 1.0, process_metrics=False) for _ in range(2)
    )  # process metrics (CPU seconds) move between the two renders
    for topic, event_type, latency in events:
        one.observe_applied(topic, event_type, latency)
    counts: dict[tuple[str, str], int] = {}
    latencies: dict[str, list[float]] = {}
    for topic, event_type, latency in events:
        counts[(topic, event_type)] = counts.get((topic, event_type), 0) + 1
        latencies.setdefault(topic, []).append(latency)
    batch.observe_applied_batch(counts, latencies)

    def exposition(m: Metrics) -> list[str]:
        return [
            line
            for line in m.render().decode().splitlines()
            if "_created" not in line and not line.startswith("#")
        ]

    assert exposition(batch) == exposition(one)
    bucket = samples(batch, "stakewatch_processing_latency_seconds_bucket")
    assert bucket[(("le", "+Inf"), ("topic", "stakewatch.spend"))] == 3
