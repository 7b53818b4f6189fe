"""Rebuilds: a reset marker replays from the start; a new rule set ignores old snapshots;
the alerts topic ends consistent with the rebuilt state (stale conflicts get resolved)."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from pathlib import Path

import pytest

from streams.engine import EngineConfig
from streams.kafka.broker import EmbeddedBroker
from streams.kafka.rebuild import request_rebuild
from streams.kafka.topics import TopicNames
from tests.integration.workers import (
    SNAPSHOT_KEY,
    alert_docs,
    backtest_open,
    open_from_alerts,
    publish,
    running_worker,
)

pytestmark = pytest.mark.integration

SEED = Path(__file__).parents[1] / "fixtures" / "scale-ai-2025.ndjson"


@pytest.fixture
def names() -> TopicNames:
    return TopicNames(f"rb{uuid.uuid4().hex[:10]}")


def lines() -> list[bytes]:
    return [raw for raw in SEED.read_bytes().splitlines() if raw.strip()]


async def _run_once(broker: EmbeddedBroker, names: TopicNames, **options) -> dict:
    async with running_worker(broker.bootstrap, names, **options) as worker:
        await asyncio.wait_for(worker.ready.wait(), 30)
        return {"restored": worker.restored, "open": dict(worker.engine.open)}


async def test_restart_restores_and_rebuild_replays(broker: EmbeddedBroker, names) -> None:
    seed = lines()
    expected, _ = backtest_open(seed)
    await publish(broker.bootstrap, names, seed)
    first = await _run_once(broker, names)
    assert first["restored"] is None and set(first["open"]) == set(expected)
    second = await _run_once(broker, names)
    assert second["restored"], "a plain restart restores the last snapshot"
    marker = await request_rebuild(broker.bootstrap, names, key=SNAPSHOT_KEY)
    third = await _run_once(broker, names)
    assert third["restored"] == marker.snapshot_id  # replayed from scratch
    assert set(third["open"]) == set(expected)
    assert open_from_alerts(await alert_docs(broker.bootstrap, names)) == expected


async def test_new_rules_replay_and_resolve_what_no_longer_holds(
    broker: EmbeddedBroker, names
) -> None:
    seed = lines()
    await publish(broker.bootstrap, names, seed)
    await _run_once(broker, names)
    before = open_from_alerts(await alert_docs(broker.bootstrap, names))
    assert before, "the default rules leave conflicts open"
    strict = EngineConfig(threshold=50.0)  # meta's 49 % no longer counts
    after = await _run_once(broker, names, config=strict)
    assert after["restored"] is None, "snapshots under other rules must not be restored"
    assert after["open"] == {}
    docs = await alert_docs(broker.bootstrap, names)
    assert open_from_alerts(docs) == {}
    assert {d["dedup_key"] for d in docs if d["event_id"] == "rebuild"} == set(before)


async def test_rebuild_from_a_time_skips_older_events(broker: EmbeddedBroker, names) -> None:
    seed = lines()
    await publish(broker.bootstrap, names, seed)
    await _run_once(broker, names)
    # From just before the stake: the rivalries and contracts are older, so nothing opens.
    june = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
    await request_rebuild(broker.bootstrap, names, june, key=SNAPSHOT_KEY)
    after = await _run_once(broker, names)
    assert after["open"] == {}
    assert open_from_alerts(await alert_docs(broker.bootstrap, names)) == {}


async def test_a_reset_marker_is_not_overtaken_by_a_running_workers_last_snapshot(
    broker: EmbeddedBroker, names
) -> None:
    """A rebuild that races a worker still running (its stop writes one more snapshot):
    that snapshot is not written, and the next start replays from the reset marker instead
    of restoring the pre-rebuild state."""
    import structlog

    seed = lines()
    await publish(broker.bootstrap, names, seed)
    with structlog.testing.capture_logs() as logs:
        async with running_worker(broker.bootstrap, names) as worker:
            await asyncio.wait_for(worker.ready.wait(), 30)
            marker = await request_rebuild(broker.bootstrap, names, key=SNAPSHOT_KEY)
            written = worker.counts["snapshots"]
        # the stop tried its snapshot after the reset: refused
    assert worker.counts["snapshots"] == written
    said = [e for e in logs if e["event"].startswith("a rebuild was requested after")]
    assert [e["reset"] for e in said] == [marker.snapshot_id]
    again = await _run_once(broker, names)
    assert again["restored"] == marker.snapshot_id  # the reset, not the worker's snapshot
