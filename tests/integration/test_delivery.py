"""Alert delivery through the real broker: worker → alerts topic → delivery agent → local
servers that answer like Slack and PagerDuty. The seed scenario pages once and resolves;
the same history again pages nobody; ``replay --no-deliver`` loads history quietly; a
receiver that is down gets everything afterwards, in order; ``kill -9`` mid-request loses
and repeats no page; a PagerDuty 400 is not retried; two agents hand over without loss."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client import CollectorRegistry

from alerts.receivers.slack import REPEAT_NOTE
from alerts.routing import load_config
from alerts.testing import PD_INVALID, PD_SERVER_ERROR, Answer, FakeApi, Received
from streams.agents.delivery import DeliveryAgent, DeliveryOptions
from streams.kafka.broker import EmbeddedBroker
from streams.kafka.headers import QUIET
from streams.kafka.topics import TopicNames, TopicSpec, ensure_topics
from streams.metrics import Metrics
from tests.integration.workers import (
    WorkerProcess,
    alert_docs,
    publish,
    read_topic,
    running_worker,
    wait_for,
)

pytestmark = pytest.mark.integration

SEED = Path(__file__).parents[1] / "fixtures" / "scale-ai-2025.ndjson"
GOOGLE = "google|scale-ai|meta"
ROUTING_KEY = "R0UT1NGKEY0123456789abcdef012345"
#: What the seed scenario must deliver to PagerDuty: four conflicts open, two resolve.
SEED_PAGES = [
    (GOOGLE, "trigger"),
    ("microsoft|scale-ai|meta", "trigger"),
    ("openai|scale-ai|meta", "trigger"),
    ("xai|scale-ai|meta", "trigger"),
    (GOOGLE, "resolve"),
    ("xai|scale-ai|meta", "resolve"),
]
LIVE = (
    b'{"specversion":"1.0","id":"live-0001","source":"/erp/openai","type":"contract.terminated",'
    b'"time":"2025-07-01T09:00:00Z","data":{"contract_id":"c-openai-scale-2024"}}'
)
# Fast retries and a Slack limit above the default 1/s, to keep these tests short.
FAST_ROUTING = """\
[defaults]
initial_backoff = 0.2
max_backoff = 1.0

[[receivers]]
name = "slack"
type = "slack"
rate_limit = 50

[[receivers]]
name = "pagerduty"
type = "pagerduty"
"""
ALERT_ENV = (
    "STAKEWATCH_ALERTS_CONFIG",
    "STAKEWATCH_ALERTS_CONSOLE",
    "STAKEWATCH_WEBHOOK_URL",
    "STAKEWATCH_WEBHOOK_SECRET",
    "STAKEWATCH_ALERTMANAGER_URL",
)


@dataclass
class Receivers:
    slack: FakeApi
    pd: FakeApi
    env: dict[str, str]


@pytest.fixture
def names() -> TopicNames:
    return TopicNames(f"d{uuid.uuid4().hex[:10]}")


@pytest.fixture
async def receivers(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Receivers]:
    """Fake Slack and PagerDuty, named by the environment as in production."""
    async with FakeApi.slack() as slack, FakeApi.pagerduty() as pd:
        env = {
            "STAKEWATCH_SLACK_WEBHOOK_URL": slack.url,
            "STAKEWATCH_PAGERDUTY_ROUTING_KEY": ROUTING_KEY,
            "STAKEWATCH_PAGERDUTY_URL": pd.url,
        }
        for var in ALERT_ENV:
            monkeypatch.delenv(var, raising=False)
        for var, value in env.items():
            monkeypatch.setenv(var, value)
        yield Receivers(slack, pd, env)


@pytest.fixture
def fast(receivers: Receivers, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Receivers:
    path = tmp_path / "alerts.toml"
    path.write_text(FAST_ROUTING)
    monkeypatch.setenv("STAKEWATCH_ALERTS_CONFIG", str(path))
    receivers.env["STAKEWATCH_ALERTS_CONFIG"] = str(path)
    return receivers


@contextlib.asynccontextmanager
async def running_delivery(
    bootstrap: str,
    names: TopicNames,
    group: str = "delivery",
    metrics: Metrics | None = None,
    standby: bool = False,
) -> AsyncIterator[DeliveryAgent]:
    """An agent that holds the alerts partition (or, ``standby``, may not)."""
    options = DeliveryOptions(
        bootstrap,
        load_config(),
        names=names,
        group_id=f"{names.prefix}-{group}",
        session_timeout=2.0,
        heartbeat_interval=0.5,
        drain_timeout=2.0,
    )
    agent = DeliveryAgent(options, metrics)
    await agent.start()
    try:
        if not standby:
            await asyncio.wait_for(agent.assigned.wait(), 15)
        yield agent
    finally:
        await agent.stop()


def seed_lines() -> list[bytes]:
    return [line for line in SEED.read_bytes().splitlines() if line.strip()]


def pd_events(api: FakeApi) -> list[tuple[str, str]]:
    return [(e["dedup_key"], e["event_action"]) for e in api.accepted_json()]


def slack_messages(api: FakeApi) -> list[tuple[str, str, str]]:
    """(dedup_key, status, text) of every message Slack accepted, in arrival order."""
    out = []
    for message in api.accepted_json():
        text = message["text"]
        found = re.search(r"(\S+\|\S+\|\S+) · event \S+ at", text)
        assert found, text
        status = "resolved" if text.startswith(":white_check_mark:") else "firing"
        out.append((found.group(1), status, text))
    return out


def incidents(events: list[tuple[str, str]]) -> Counter[str]:
    """Pages as PagerDuty counts them: a trigger opens an incident unless one with that
    dedup_key is open; a resolve closes it."""
    open_keys: set[str] = set()
    pages: Counter[str] = Counter()
    for key, action in events:
        if action == "trigger" and key not in open_keys:
            pages[key] += 1
            open_keys.add(key)
        elif action == "resolve":
            open_keys.discard(key)
    return pages


def counter(metrics: Metrics, receiver: str, outcome: str) -> float:
    return metrics.deliveries.labels(receiver, outcome)._value.get()


async def test_seed_scenario_pages_google_once_resolves_it_and_tells_slack(
    broker: EmbeddedBroker, names: TopicNames, receivers: Receivers
) -> None:
    """The issue's "done when", with the default receivers from the environment (Slack at
    its real limit of one message a second)."""
    metrics = Metrics(CollectorRegistry(), process_metrics=False)
    async with (
        running_delivery(broker.bootstrap, names, metrics=metrics) as agent,
        running_worker(broker.bootstrap, names),
    ):
        await publish(broker.bootstrap, names, seed_lines())
        await wait_for(lambda: agent.committed == 6, 25, "six records delivered and committed")
    events = pd_events(receivers.pd)
    assert [a for k, a in events if k == GOOGLE] == ["trigger", "resolve"]
    assert sorted(events) == sorted(SEED_PAGES) and len(receivers.pd.received) == 6
    assert receivers.pd.accepted_json()[0]["payload"]["severity"] == "critical"

    messages = slack_messages(receivers.slack)
    assert len(messages) == 6
    google = [(status, text) for key, status, text in messages if key == GOOGLE]
    assert [status for status, _ in google] == ["firing", "resolved"]
    fired, resolved = google[0][1], google[1][1]
    assert "CRITICAL" in fired and "meta —49%→ scale-ai" in fired
    assert "announced only, pending" in fired and "$150.0M" in fired
    assert "resolved: google ended c-google-scale-2024" in resolved
    assert "Follow-up to the alert of 2025-06-12 14:00 UTC" in resolved
    assert counter(metrics, "pagerduty", "delivered") == 6
    assert counter(metrics, "slack", "delivered") == 6


@dataclass(frozen=True)
class WithoutSnapshots(TopicNames):
    """The same event and alert topics, and a snapshots topic with nothing on it: a worker
    on these names rebuilds everything from the events."""

    tag: str = "rebuild"

    @property
    def snapshots(self) -> str:
        return f"{self.prefix}.snapshots-{self.tag}"


async def test_the_same_history_again_pages_nobody(
    broker: EmbeddedBroker, names: TopicNames, fast: Receivers
) -> None:
    lines = seed_lines()
    bootstrap = broker.bootstrap
    async with running_delivery(bootstrap, names) as agent:
        async with running_worker(bootstrap, names) as worker:
            await publish(bootstrap, names, lines)
            await wait_for(lambda: agent.committed == 6, 15, "the seed delivered")
            told = (len(fast.pd.received), len(fast.slack.received))
            assert told == (6, 6)
            await publish(bootstrap, names, lines)  # the same file again
            await wait_for(lambda: worker.counts["rejected"] == len(lines), 15, "repeats seen")
        # A rebuild: a new worker group with no snapshots replays every event and publishes
        # every alert record again.
        rebuilt = WithoutSnapshots(names.prefix)
        await ensure_topics(bootstrap, [TopicSpec(rebuilt.snapshots, 1)])
        async with running_worker(bootstrap, rebuilt, group_id=f"{names.prefix}-rebuild") as again:
            await wait_for(lambda: again.counts["applied"] == len(lines), 15, "history rebuilt")
            await wait_for(lambda: agent.committed == 12, 15, "the rebuilt records read")
    assert len(await alert_docs(bootstrap, names)) == 12
    assert (len(fast.pd.received), len(fast.slack.received)) == told
    # A delivery agent in a new group reads the alerts topic from its start: still nobody.
    async with running_delivery(bootstrap, names, group="fresh") as fresh:
        await wait_for(lambda: fresh.committed == 12, 15, "the whole topic read again")
    assert (len(fast.pd.received), len(fast.slack.received)) == told


async def test_replay_no_deliver_loads_history_quietly_and_live_events_page(
    broker: EmbeddedBroker, names: TopicNames, fast: Receivers
) -> None:
    async with (
        running_delivery(broker.bootstrap, names) as agent,
        running_worker(broker.bootstrap, names),
    ):
        env = {
            **os.environ,
            "STAKEWATCH_BROKER": broker.url,
            "STAKEWATCH_TOPIC_PREFIX": names.prefix,
        }
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            *("-m", "streams", "replay", "--no-deliver", "--json", str(SEED)),
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 20)
        assert proc.returncode == 0, err.decode()
        assert orjson.loads(out)["published"] == 80
        await wait_for(lambda: agent.committed == 6, 15, "history recorded")
        assert fast.pd.received == [] and fast.slack.received == []
        entry = await agent.log.get("pagerduty", "openai|scale-ai|meta")
        assert entry is not None and entry.status == "firing"
        assert [h.outcome for h in entry.handled] == ["recorded"]

        await publish(broker.bootstrap, names, [LIVE])  # something new happens
        await wait_for(lambda: agent.committed == 7, 15, "the live record delivered")
    assert pd_events(fast.pd) == [("openai|scale-ai|meta", "resolve")]
    assert [(k, s) for k, s, _ in slack_messages(fast.slack)] == [
        ("openai|scale-ai|meta", "resolved")
    ]
    records = await read_topic(broker.bootstrap, names.alerts)
    assert [QUIET in r.headers for r in records] == [True] * 6 + [False]


async def test_a_receiver_down_for_seconds_gets_everything_after_in_order(
    broker: EmbeddedBroker, names: TopicNames, fast: Receivers
) -> None:
    down = True
    fast.pd.responder = lambda req: PD_SERVER_ERROR if down else None
    metrics = Metrics(CollectorRegistry(), process_metrics=False)
    async with (
        running_delivery(broker.bootstrap, names, metrics=metrics) as agent,
        running_worker(broker.bootstrap, names),
    ):
        await publish(broker.bootstrap, names, seed_lines())
        await wait_for(lambda: len(fast.slack.accepted) == 6, 15, "Slack, not held up")
        await wait_for(lambda: fast.pd.received, 10, "a first PagerDuty attempt")
        await asyncio.sleep(6)  # the outage
        assert not agent.committed, "committed past a record PagerDuty has not got"
        assert fast.pd.accepted == []
        down = False
        await wait_for(lambda: agent.committed == 6, 15, "everything delivered after")
    events = pd_events(fast.pd)
    assert sorted(events) == sorted(SEED_PAGES)  # everything, once
    for key in {k for k, _ in SEED_PAGES}:
        assert [a for k, a in events if k == key] == [a for k, a in SEED_PAGES if k == key]
    failures = len(fast.pd.received) - 6
    assert failures >= 12  # four conflicts retried through six seconds
    assert metrics.delivery_retries.labels("pagerduty")._value.get() == failures


async def test_a_pagerduty_400_is_final_and_recorded_not_retried(
    broker: EmbeddedBroker, names: TopicNames, fast: Receivers
) -> None:
    def refuse_google(req: Received) -> Answer | None:
        return PD_INVALID if req.json().get("dedup_key") == GOOGLE else None

    fast.pd.responder = refuse_google
    metrics = Metrics(CollectorRegistry(), process_metrics=False)
    async with (
        running_delivery(broker.bootstrap, names, metrics=metrics) as agent,
        running_worker(broker.bootstrap, names),
    ):
        await publish(broker.bootstrap, names, seed_lines())
        await wait_for(lambda: agent.committed == 6, 15, "all records done")
        entry = await agent.log.get("pagerduty", GOOGLE)
    google = [r for r in fast.pd.received if r.json()["dedup_key"] == GOOGLE]
    assert [(r.status, r.json()["event_action"]) for r in google] == [(400, "trigger")]
    assert entry is not None and entry.status is None  # never told: its resolve is not sent
    assert [h.outcome[:16] for h in entry.handled] == ["failed: HTTP 400"]
    assert sorted(pd_events(fast.pd)) == sorted(p for p in SEED_PAGES if p[0] != GOOGLE)
    assert counter(metrics, "pagerduty", "failed") == 1
    assert counter(metrics, "pagerduty", "suppressed") == 1  # the resolve of what never fired
    assert len(fast.slack.accepted) == 6  # Slack unaffected


async def test_kill_9_mid_request_loses_no_page_and_repeats_none(
    broker: EmbeddedBroker, names: TopicNames, fast: Receivers, tmp_path: Path
) -> None:
    """The worker process dies while PagerDuty and Slack hold the request for google's
    firing. The next process finds the intent in the notification log: it sends that one
    record again (PagerDuty folds it by dedup_key; Slack's copy says it may be a repeat)
    and nothing else."""
    hit = {"pagerduty": asyncio.Event(), "slack": asyncio.Event()}
    arrived: list[tuple[str, str]] = []  # PagerDuty acts on arrival, not when it answers
    pd_ok = orjson.dumps({"status": "success", "message": "Event processed", "dedup_key": GOOGLE})

    def held(req: Received) -> Answer | None:
        """Google's firing, the first time: received, then answered 3 s later."""
        doc = req.json()
        if "event_action" in doc:
            arrived.append((doc["dedup_key"], doc["event_action"]))
        if "text" in doc and doc["text"].startswith(":rotating_light: CRITICAL: google's"):
            api, answer = "slack", Answer(200, "ok", delay=3.0)
        elif doc.get("dedup_key") == GOOGLE and doc.get("event_action") == "trigger":
            api, answer = "pagerduty", Answer(202, pd_ok, delay=3.0)
        else:
            return None
        if hit[api].is_set():
            return None
        hit[api].set()
        return answer

    fast.pd.responder = fast.slack.responder = held
    log = tmp_path / "workers.log"
    first = WorkerProcess(broker.bootstrap, names.prefix, log, env=fast.env)
    second = None
    try:
        await wait_for(first.status, 20, "first worker up")
        await publish(broker.bootstrap, names, seed_lines())
        await asyncio.wait_for(hit["pagerduty"].wait(), 20)
        await asyncio.wait_for(hit["slack"].wait(), 5)
        await asyncio.sleep(0.3)  # the other conflicts' answers and log writes land
        first.kill()
        second = WorkerProcess(broker.bootstrap, names.prefix, log, env=fast.env)

        def all_told() -> bool:
            return (
                set(pd_events(fast.pd)) == set(SEED_PAGES)
                and len({(k, s) for k, s, _ in slack_messages(fast.slack)}) == 6
            )

        await wait_for(all_told, 25, "every record delivered after the restart")
        await asyncio.sleep(1)  # anything repeated would arrive now
        assert second.terminate() == 0  # SIGTERM: drains, commits, exits cleanly
    finally:
        if first.proc.poll() is None:
            first.kill()
        if second is not None and second.proc.poll() is None:
            second.kill()
    assert incidents(arrived) == {key: 1 for key, action in SEED_PAGES if action == "trigger"}
    # The one request in flight, sent again; PagerDuty folds it into the open incident.
    assert Counter(arrived) - Counter(SEED_PAGES) == Counter({(GOOGLE, "trigger"): 1})
    assert set(pd_events(fast.pd)) == set(SEED_PAGES)
    messages = slack_messages(fast.slack)
    repeats = [(k, s) for k, s, text in messages if REPEAT_NOTE in text]
    assert repeats == [(GOOGLE, "firing")]  # only the one in flight, and it says so
    assert len(messages) == 7
    logged = log.read_text()
    assert '"alert.in_doubt"' in logged, "the restart did not see the record in doubt"


async def test_a_graceful_handover_between_two_agents_loses_and_repeats_nothing(
    broker: EmbeddedBroker, names: TopicNames, fast: Receivers
) -> None:
    """Two workers' delivery agents in one group: the holder is stopped mid-stream; it
    drains and commits, the other catches the log up and goes on from the commit."""
    await ensure_topics(broker.bootstrap, [TopicSpec(names.alerts, 1)])
    sent = []
    base = orjson.loads(SEED.read_bytes().splitlines()[0])  # any event time will do
    for i in range(60):
        client = f"client-{i % 10}"
        doc = {
            "dedup_key": f"{client}|scale-ai|meta",
            "status": "firing",
            "severity": ("critical", "high", "warning")[(i // 10) % 3],
            "client": client,
            "vendor": "scale-ai",
            "rival": "meta",
            "stake": 49.0,
            "controlled": False,
            "pending": False,
            "spend_365d": 1000.0,
            "event_id": f"e{i:03}",
            "event_time": base["time"],
        }
        sent.append(orjson.dumps(doc))
    async with (
        running_delivery(broker.bootstrap, names, group="pair") as a,
        running_delivery(broker.bootstrap, names, group="pair", standby=True) as b,
    ):
        await asyncio.sleep(2.5)  # b's join makes the group rebalance once
        await wait_for(lambda: a.assigned.is_set() or b.assigned.is_set(), 10, "a holder")
        holder, standby = (a, b) if a.assigned.is_set() else (b, a)
        fast.pd.responder = lambda req: Answer(202, b"{}", delay=0.02)  # deliveries take time
        producer_task = asyncio.create_task(publish_alerts(broker.bootstrap, names.alerts, sent))
        await wait_for(lambda: len(fast.pd.accepted) >= 15, 10, "delivery under way")
        await holder.stop()
        await producer_task
        await wait_for(lambda: standby.committed == 60, 15, "the rest delivered by the other")
    assert holder.committed is not None and 0 < holder.committed < 60, holder.committed
    expected = [(orjson.loads(v)["dedup_key"], orjson.loads(v)["event_id"]) for v in sent]
    paged = [
        (d["dedup_key"], d["payload"]["custom_details"]["event_id"])
        for d in fast.pd.accepted_json()
    ]
    posted = [
        tuple(re.search(r"(\S+\|\S+\|\S+) · event (\S+) at", d["text"]).groups())
        for d in fast.slack.accepted_json()
    ]
    assert len(fast.pd.received) == len(fast.slack.received) == 60  # none twice
    for got in (paged, posted):
        assert sorted(got) == sorted(expected)  # none lost
        for key in {k for k, _ in expected}:  # topic order per conflict
            assert [e for k, e in got if k == key] == [e for k, e in expected if k == key]


async def publish_alerts(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    try:
        for value in values:
            await producer.send(topic, value, partition=0)
            await asyncio.sleep(0.01)
        await producer.flush()
    finally:
        await producer.stop()
