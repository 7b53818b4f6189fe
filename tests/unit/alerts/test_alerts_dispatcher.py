"""The delivery pipeline against local servers that answer like Slack and PagerDuty:
one page per conflict state, order per conflict, retries that lose nothing, acks only after
delivery, and no page for history already told."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections import defaultdict
from typing import Any

import httpx
import orjson
import pytest
import structlog
from aiolimiter import AsyncLimiter
from alert_samples import SEED_FIRING, SEED_RESOLVED, make_record
from pydantic import SecretStr

from alerts.dispatcher import Channel, Dispatcher, OffsetTracker
from alerts.notification_log import InMemoryNotificationLog
from alerts.receivers import PagerDutyReceiver, SlackReceiver, WebhookReceiver
from alerts.receivers.base import Delivery
from alerts.receivers.slack import REPEAT_NOTE
from alerts.record import AlertRecord
from alerts.retry import RetryPolicy
from alerts.routing import Route, Router
from alerts.testing import (
    PD_SERVER_ERROR,
    PD_THROTTLED,
    SLACK_INVALID_PAYLOAD,
    SLACK_RATE_LIMITED,
    Answer,
    FakeApi,
    FakeClock,
    RecordingMetrics,
)

ROUTING_KEY = "R0UT1NGKEY0123456789abcdef012345"


def seed_history() -> list[AlertRecord]:
    """The seed scenario's records (scale-ai-2025): four conflicts open, two resolve."""
    others = [
        make_record(SEED_FIRING, client="microsoft", severity="high", data_classes=[]),
        make_record(SEED_FIRING, client="openai", data_classes=["prototypes"]),
        make_record(SEED_FIRING, client="xai", data_classes=["internal_documents"]),
    ]
    xai_resolved = make_record(
        SEED_RESOLVED, client="xai", event_id="seed-0078", event_time="2025-06-16T09:00:00Z"
    )
    return [make_record(SEED_FIRING), *others, make_record(SEED_RESOLVED), xai_resolved]


class Acks:
    """Collects acks in the order they come."""

    def __init__(self) -> None:
        self.done: list[str] = []

    def __call__(self, record: AlertRecord):
        return lambda: self.done.append(f"{record.dedup_key}@{record.event_id}")


def dispatcher(
    receivers: list[Any],
    clock: FakeClock,
    log: InMemoryNotificationLog | None = None,
    router: Any = None,
    **kw: Any,
) -> Dispatcher:
    return Dispatcher(
        receivers,
        router,
        log if log is not None else InMemoryNotificationLog(),
        sleep=clock.sleep,
        clock=clock,
        rand=random.Random(7).random,
        **kw,
    )


def pd_events(api: FakeApi, key: str = "google|scale-ai|meta") -> list[tuple[str, str | None]]:
    return [
        (e["event_action"], e.get("payload", {}).get("severity"))
        for e in api.accepted_json()
        if e["dedup_key"] == key
    ]


async def test_seed_scenario_pages_once_and_resolves_and_a_replay_pages_nobody(
    client: httpx.AsyncClient, pd_api: FakeApi, slack_api: FakeApi, clock: FakeClock
) -> None:
    log = InMemoryNotificationLog()
    acks = Acks()

    def receivers() -> list[Any]:
        return [
            PagerDutyReceiver(client, SecretStr(ROUTING_KEY), url=pd_api.url),
            SlackReceiver(client, SecretStr(slack_api.url)),
        ]

    live = dispatcher(receivers(), clock, log)
    for rec in seed_history():
        await live.submit(rec, acks(rec))
    await live.join()

    assert pd_events(pd_api) == [("trigger", "critical"), ("resolve", None)]
    assert pd_events(pd_api, "microsoft|scale-ai|meta") == [("trigger", "error")]
    assert len(pd_api.accepted) == 6 and len(slack_api.accepted) == 6
    assert sorted(acks.done) == sorted(f"{r.dedup_key}@{r.event_id}" for r in seed_history())
    slack_texts = [m["text"] for m in slack_api.accepted_json()]
    assert any("resolved: google ended c-google-scale-2024" in t for t in slack_texts)

    # The same history again (a rebuild, or the file replayed): recorded, nobody paged.
    replay_acks = Acks()
    again = dispatcher(receivers(), clock, log)
    for rec in seed_history():
        await again.submit(rec, replay_acks(rec))
    await again.join()
    assert len(pd_api.received) == 6 and len(slack_api.received) == 6
    assert len(replay_acks.done) == len(seed_history())


async def test_slack_429_waits_for_retry_after_then_delivers(
    client: httpx.AsyncClient, slack_api: FakeApi, clock: FakeClock
) -> None:
    metrics = RecordingMetrics()
    slack_api.answer_next(SLACK_RATE_LIMITED)
    d = dispatcher([SlackReceiver(client, SecretStr(slack_api.url))], clock, metrics=metrics)
    await d.submit(make_record(SEED_FIRING))
    await d.join()
    assert [r.status for r in slack_api.received] == [429, 200]
    assert clock.sleeps == [30.0]  # Retry-After: 30, not the 1 s backoff
    assert metrics.retries["slack"] == 1
    assert metrics.deliveries[("slack", "delivered")] == 1


async def test_pagerduty_429_and_500_back_off_then_deliver(
    client: httpx.AsyncClient, pd_api: FakeApi, clock: FakeClock
) -> None:
    pd_api.answer_next(PD_THROTTLED, PD_SERVER_ERROR, PD_SERVER_ERROR)
    pd = PagerDutyReceiver(client, SecretStr(ROUTING_KEY), url=pd_api.url)
    d = dispatcher([Channel(pd, RetryPolicy(jitter=0))], clock)
    await d.submit(make_record(SEED_FIRING))
    await d.join()
    assert [r.status for r in pd_api.received] == [429, 500, 500, 202]
    assert clock.sleeps == [1.0, 2.0, 4.0]


async def test_a_400_is_not_retried_and_is_recorded_with_the_answer(
    client: httpx.AsyncClient, slack_api: FakeApi, clock: FakeClock
) -> None:
    log = InMemoryNotificationLog()
    metrics = RecordingMetrics()
    acks = Acks()
    slack_api.answer_next(SLACK_INVALID_PAYLOAD)
    d = dispatcher([SlackReceiver(client, SecretStr(slack_api.url))], clock, log, metrics=metrics)
    firing, resolved = make_record(SEED_FIRING), make_record(SEED_RESOLVED)
    await d.submit(firing, acks(firing))
    await d.submit(resolved, acks(resolved))
    await d.join()
    assert [r.status for r in slack_api.received] == [400]  # and the resolve was not sent
    assert clock.sleeps == []
    assert len(acks.done) == 2
    assert metrics.deliveries[("slack", "failed")] == 1
    assert metrics.deliveries[("slack", "skipped")] == 1
    entry = await log.get("slack", firing.dedup_key)
    assert entry is not None and entry.status is None
    assert entry.handled[0].outcome == "failed: HTTP 400 invalid_payload"


async def test_receiver_down_for_30s_gets_everything_afterwards_in_order(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    # 500s for the first answers after the restart: counted, not timed by the fake clock,
    # which can run on (other lanes' waits) while a request is in flight in real time, so
    # under load a window in virtual time could pass before any request reached the server.
    answered = itertools.count()
    api = FakeApi.pagerduty(responder=lambda req: PD_SERVER_ERROR if next(answered) < 4 else None)
    clock.at(30, api.start)  # connection refused until t=30 s
    history = seed_history()
    acks = Acks()
    metrics = RecordingMetrics()
    pd = PagerDutyReceiver(client, SecretStr(ROUTING_KEY), url=api.url)
    d = dispatcher([pd], clock, metrics=metrics)
    try:
        for rec in history:
            await d.submit(rec, acks(rec))
        await d.join()
    finally:
        await api.stop()
    assert clock.now >= 30
    assert [r.status for r in api.received].count(500) == 4
    assert len(acks.done) == len(history)
    assert pd_events(api) == [("trigger", "critical"), ("resolve", None)]
    assert pd_events(api, "xai|scale-ai|meta") == [("trigger", "critical"), ("resolve", None)]
    assert len(api.accepted) == 6
    assert metrics.retries["pagerduty"] > 0
    assert ("pagerduty", "gave_up") not in metrics.deliveries


async def test_give_up_time_ends_retries_and_acks(
    client: httpx.AsyncClient, slack_api: FakeApi, clock: FakeClock
) -> None:
    await slack_api.stop()  # never comes back
    metrics = RecordingMetrics()
    acks = Acks()
    slack = SlackReceiver(client, SecretStr(slack_api.url))
    d = dispatcher([Channel(slack, RetryPolicy(give_up_after=120))], clock, metrics=metrics)
    rec = make_record(SEED_FIRING)
    await d.submit(rec, acks(rec))
    await d.join()
    assert acks.done == [f"{rec.dedup_key}@{rec.event_id}"]
    assert metrics.deliveries[("slack", "gave_up")] == 1
    assert clock.now <= 120


async def test_per_conflict_order_holds_under_concurrency_and_failures(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    rng = random.Random(42)

    async def flaky(req: Any) -> Answer | None:
        await asyncio.sleep(rng.random() * 0.004)
        return Answer(503) if rng.random() < 0.3 else None

    history: list[AlertRecord] = []
    for i in range(15):
        client_id = f"client-{i:02d}"
        history += [
            make_record(SEED_FIRING, client=client_id, severity="warning", event_id=f"a{i}"),
            make_record(SEED_FIRING, client=client_id, severity="high", event_id=f"b{i}"),
            make_record(SEED_FIRING, client=client_id, severity="critical", event_id=f"c{i}"),
            make_record(SEED_RESOLVED, client=client_id, event_id=f"d{i}"),
        ]
    # Interleave conflicts the way one alerts partition would.
    history.sort(key=lambda r: (r.event_id[0], r.client))
    async with FakeApi.webhook(responder=flaky) as api:
        hook = WebhookReceiver(client, SecretStr(api.url), SecretStr("k"))
        d = dispatcher([Channel(hook, max_in_flight=4)], clock)
        for rec in history:
            await d.submit(rec)
        await d.join()
    seen: dict[str, list[str]] = defaultdict(list)
    for body in api.accepted_json():
        seen[body["dedup_key"]].append(f"{body['status']}:{body['severity']}")
    assert len(seen) == 15
    for states in seen.values():
        assert states == ["firing:warning", "firing:high", "firing:critical", "resolved:critical"]


async def test_ack_waits_for_every_routed_receiver(
    client: httpx.AsyncClient, pd_api: FakeApi, clock: FakeClock
) -> None:
    gate = asyncio.Event()

    async def held(req: Any) -> None:
        await gate.wait()

    acks = Acks()
    async with FakeApi.slack(responder=held) as slow:
        d = dispatcher(
            [
                PagerDutyReceiver(client, SecretStr(ROUTING_KEY), url=pd_api.url),
                SlackReceiver(client, SecretStr(slow.url)),
            ],
            clock,
        )
        rec = make_record(SEED_FIRING)
        await d.submit(rec, acks(rec))
        for _ in range(200):
            if pd_api.accepted:
                break
            await asyncio.sleep(0.005)
        assert pd_api.accepted and acks.done == []  # PagerDuty has it, Slack not yet
        gate.set()
        await d.join()
    assert acks.done == [f"{rec.dedup_key}@{rec.event_id}"]


async def test_unrouted_records_are_acked_at_once_and_async_acks_are_awaited(
    client: httpx.AsyncClient, pd_api: FakeApi, clock: FakeClock
) -> None:
    router = Router((Route(("pagerduty",), severity=frozenset({"critical"})),))
    d = dispatcher(
        [PagerDutyReceiver(client, SecretStr(ROUTING_KEY), url=pd_api.url)], clock, router=router
    )
    done: list[str] = []

    async def ack() -> None:
        await asyncio.sleep(0)
        done.append("acked")

    await d.submit(make_record(SEED_FIRING, severity="warning"), ack)
    assert done == ["acked"] and pd_api.received == []
    await d.submit(make_record(SEED_FIRING), ack)
    await d.join()
    assert done == ["acked", "acked"] and len(pd_api.accepted) == 1


async def test_submit_waits_when_the_queue_is_full_and_drops_nothing(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    gate = asyncio.Event()

    async def held(req: Any) -> None:
        await gate.wait()

    metrics = RecordingMetrics()
    async with FakeApi.pagerduty(responder=held) as api:
        pd = PagerDutyReceiver(client, SecretStr(ROUTING_KEY), url=api.url)
        d = dispatcher([pd], clock, max_pending=2, metrics=metrics)
        records = [make_record(SEED_FIRING, client=f"c{i}") for i in range(5)]
        await d.submit(records[0])
        await d.submit(records[1])
        third = asyncio.create_task(d.submit(records[2]))
        await asyncio.wait_for(metrics.held_back.wait(), 5)  # the third submit is held back
        assert not third.done() and metrics.backpressured == [2]
        gate.set()
        await third
        for rec in records[3:]:
            await d.submit(rec)
        await d.join()
    assert sorted(e["dedup_key"] for e in api.accepted_json()) == sorted(
        r.dedup_key for r in records
    )
    assert max(metrics.depths["pagerduty"]) <= 2


async def test_rate_limit_queues_messages_instead_of_dropping_them(
    client: httpx.AsyncClient, slack_api: FakeApi, clock: FakeClock
) -> None:
    slack = SlackReceiver(client, SecretStr(slack_api.url))
    d = dispatcher([Channel(slack, limiter=AsyncLimiter(1, 0.05))], clock)
    start = time.monotonic()
    for i in range(5):
        await d.submit(make_record(SEED_FIRING, client=f"c{i}"))
    await d.join()
    assert len(slack_api.accepted) == 5
    assert time.monotonic() - start >= 0.15  # 1 per 50 ms: 4 waits


async def test_no_deliver_records_history_without_paging_then_live_goes_on(
    client: httpx.AsyncClient, pd_api: FakeApi, clock: FakeClock
) -> None:
    log = InMemoryNotificationLog()
    metrics = RecordingMetrics()
    pd = PagerDutyReceiver(client, SecretStr(ROUTING_KEY), url=pd_api.url)
    history = seed_history()
    loader = dispatcher([pd], clock, log, deliver=False, metrics=metrics)
    for rec in history:
        await loader.submit(rec)
    await loader.join()
    assert pd_api.received == [] and metrics.deliveries[("pagerduty", "recorded")] == 6

    live = dispatcher([pd], clock, log)
    for rec in history:  # the same history arrives again: still nobody is paged
        await live.submit(rec)
    news = make_record(
        SEED_RESOLVED, client="openai", event_id="live-1", event_time="2025-07-01T00:00:00Z"
    )
    await live.submit(news)  # new history is delivered
    await live.join()
    assert [(e["event_action"], e["dedup_key"]) for e in pd_api.accepted_json()] == [
        ("resolve", "openai|scale-ai|meta")
    ]


async def test_crash_during_delivery_loses_nothing_and_repeats_no_page(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    """kill -9 model: the dispatcher dies with a request in flight; the worker restarts from
    the last committed offset and submits again to a new dispatcher with the same log."""
    history = seed_history()
    hang, release = asyncio.Event(), asyncio.Event()

    async def hang_on_openai(req: Any) -> Answer | None:
        if req.json().get("dedup_key") == "openai|scale-ai|meta" and not hang.is_set():
            hang.set()
            await release.wait()
            return Answer(503)  # the caller is gone by then: it never got an answer
        return None

    log = InMemoryNotificationLog()
    async with FakeApi.pagerduty(responder=hang_on_openai) as api:
        pd = PagerDutyReceiver(client, SecretStr(ROUTING_KEY), url=api.url)
        tracker, committed = OffsetTracker(), [0]

        def ack_for(offset: int):
            def ack() -> None:
                position = tracker.done(offset)
                if position is not None:
                    committed[0] = position

            return ack

        first = dispatcher([Channel(pd, max_in_flight=1)], clock, log)
        for offset, rec in enumerate(history):
            tracker.track(offset)
            await first.submit(rec, ack_for(offset))
        await asyncio.wait_for(hang.wait(), 5)
        await asyncio.sleep(0.05)
        await first.aclose()  # the crash
        release.set()
        assert committed[0] < len(history)

        second = dispatcher([pd], clock, log)
        tracker = OffsetTracker()
        for offset in range(committed[0], len(history)):
            tracker.track(offset)
            await second.submit(history[offset], ack_for(offset))
        await second.join()
    assert committed[0] == len(history)
    events = [(e["dedup_key"], e["event_action"]) for e in api.accepted_json()]
    assert sorted(events) == sorted({(r.dedup_key, _action(r)) for r in history})
    assert len(events) == len(set(events)) == 6


async def test_a_slack_post_cut_short_is_sent_again_saying_so_and_nothing_else_repeats(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    """The intent written before the request tells the restarted dispatcher which record
    may have reached Slack: only that one is sent again, marked as a possible repeat."""
    history = seed_history()
    hang, release = asyncio.Event(), asyncio.Event()

    async def hang_on_openai(req: Any) -> Answer | None:
        if "openai" in req.json()["text"] and not hang.is_set():
            hang.set()
            await release.wait()  # Slack posted it; the caller never hears back
        return None

    log = InMemoryNotificationLog()
    async with FakeApi.slack(responder=hang_on_openai) as api:
        slack = SlackReceiver(client, SecretStr(api.url))
        first = dispatcher([Channel(slack, max_in_flight=1)], clock, log)
        for rec in history[:3]:  # google, microsoft, openai
            await first.submit(rec)
        await asyncio.wait_for(hang.wait(), 5)
        await first.aclose()  # the crash, mid-request
        release.set()
        await asyncio.sleep(0.05)
        entry = await log.get("slack", "openai|scale-ai|meta")
        assert entry is not None and entry.in_doubt(history[2])

        second = dispatcher([SlackReceiver(client, SecretStr(api.url))], clock, log)
        for rec in history:
            await second.submit(rec)
        await second.join()
    texts = [m["text"] for m in api.accepted_json()]
    assert len(texts) == len(history) + 1  # the one in doubt, twice
    repeats = [t for t in texts if REPEAT_NOTE in t]
    assert len(repeats) == 1 and "openai" in repeats[0]
    assert sum("openai" in t for t in texts) == 2


async def test_a_quiet_record_is_recorded_not_sent_and_the_next_one_is_sent(
    client: httpx.AsyncClient, pd_api: FakeApi, clock: FakeClock
) -> None:
    metrics = RecordingMetrics()
    log = InMemoryNotificationLog()
    pd = PagerDutyReceiver(client, SecretStr(ROUTING_KEY), url=pd_api.url)
    d = dispatcher([pd], clock, log, metrics=metrics)
    firing, resolved = make_record(SEED_FIRING), make_record(SEED_RESOLVED)
    acks = Acks()
    await d.submit(firing, acks(firing), deliver=False)  # from `replay --no-deliver`
    await d.submit(resolved, acks(resolved))
    await d.join()
    assert pd_events(pd_api) == [("resolve", None)]
    assert metrics.deliveries[("pagerduty", "recorded")] == 1 and len(acks.done) == 2


def _action(record: AlertRecord) -> str:
    return "trigger" if record.status == "firing" else "resolve"


async def test_a_receiver_bug_is_a_permanent_failure_not_a_stuck_lane(clock: FakeClock) -> None:
    class Broken:
        name = "broken"

        async def deliver(self, record: AlertRecord) -> Delivery:
            raise RuntimeError("boom https://hooks.example/SECRET")

    metrics = RecordingMetrics()
    acks = Acks()
    d = dispatcher([Broken()], clock, metrics=metrics)
    rec = make_record(SEED_FIRING)
    await d.submit(rec, acks(rec))
    await d.join()
    assert len(acks.done) == 1 and metrics.deliveries[("broken", "failed")] == 1
    entry = await d._log_store.get("broken", rec.dedup_key)  # type: ignore[attr-defined]
    assert entry is not None and "RuntimeError" in entry.handled[0].outcome
    assert "SECRET" not in entry.handled[0].outcome


async def test_secrets_never_reach_errors_logs_or_reprs(
    client: httpx.AsyncClient, slack_api: FakeApi, clock: FakeClock
) -> None:
    slack_url = slack_api.url
    secret_path = "XXXXSECRETXXXX"
    assert secret_path in slack_url
    await slack_api.stop()  # connection refused
    echo = Answer(
        400,
        orjson.dumps({"status": "invalid event", "message": f"bad routing_key {ROUTING_KEY}"}),
    )
    log = InMemoryNotificationLog()
    with structlog.testing.capture_logs() as logs:
        async with FakeApi.pagerduty() as pd_api:
            pd_api.answer_next(echo)
            slack = SlackReceiver(client, SecretStr(slack_url))
            pd = PagerDutyReceiver(client, SecretStr(ROUTING_KEY), url=pd_api.url)
            d = dispatcher(
                [Channel(slack, RetryPolicy(give_up_after=5)), pd],
                clock,
                log,
                logger=structlog.get_logger("test"),
            )
            await d.submit(make_record(SEED_FIRING))
            await d.join()
            direct = await slack.deliver(make_record(SEED_FIRING))
    texts = [repr(logs), repr(log.items()), repr(slack), repr(pd), direct.detail, repr(direct)]
    everything = "\n".join(texts)
    assert "ConnectError" in everything and "bad routing_key ***" in everything
    assert secret_path not in everything
    assert slack_url not in everything
    assert ROUTING_KEY not in everything


async def test_rejects_duplicate_receiver_names(client: httpx.AsyncClient) -> None:
    a = SlackReceiver(client, SecretStr("http://127.0.0.1:9/a"))
    with pytest.raises(ValueError, match="unique"):
        Dispatcher([a, a], None, InMemoryNotificationLog())


def test_offset_tracker_commits_only_the_contiguous_acked_prefix() -> None:
    tracker = OffsetTracker()
    for offset in (10, 11, 12, 13):
        tracker.track(offset)
    assert tracker.done(12) is None  # 10 and 11 still open
    assert tracker.done(10) == 11
    assert tracker.done(13) is None
    assert tracker.done(11) == 14  # 11, 12, 13 all done: next offset to read is 14
    with pytest.raises(ValueError):
        tracker.track(5)
