"""`stakewatch demo`: the Scale AI case through the real pipeline, alerts shown as they fire.

Everything a deployment has, in one process on a fresh machine: an embedded Kafka broker
(Tansu, in a throwaway data dir so the demo never mixes with your own archive), the stream
worker, the seed scenario published event by event with its event times, and the alerts
topic rendered by the console receiver — who, which vendor, which rival, the ownership
path, money and data at risk. With ``STAKEWATCH_BROKER`` set it runs against that broker
under a fresh topic prefix instead.
"""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aiokafka import TopicPartition
from rich.console import Console

from alerts.receivers.console import ConsoleReceiver
from alerts.record import AlertRecord as DeliveredRecord
from streams.agents.snapshot_key import SnapshotKey, snapshot_key
from streams.agents.worker import Worker, WorkerOptions
from streams.events import Rejection, decode
from streams.kafka.clients import make_consumer, make_producer
from streams.kafka.connect import broker_session
from streams.kafka.headers import dead_letter_headers
from streams.kafka.replay import event_time_ms
from streams.kafka.topics import TopicNames, route
from streams.settings import load_settings
from streams.signals import on_signals

__all__ = ["SEED_SCENARIO", "run_demo"]

SEED_SCENARIO = Path(__file__).resolve().parent / "scenarios" / "scale-ai-2025.ndjson"
_PAUSE_BEFORE = ("ownership.stake", "contract.terminated")


async def run_demo(
    path: Path = SEED_SCENARIO,
    *,
    pace: float = 0.6,
    follow: bool = True,
    console: Console | None = None,
) -> int:
    """Publish ``path`` into a live worker and render its alerts; returns records shown.

    ``pace`` seconds pass before each stake and termination, so the conflicts appear one
    step at a time. With ``follow`` the worker keeps watching until Ctrl-C.
    """
    console = console or Console()
    data = await asyncio.to_thread(path.read_bytes)
    lines = [raw for raw in data.splitlines() if raw.strip()]
    with tempfile.TemporaryDirectory(prefix="stakewatch-demo-") as tmp:
        settings = load_settings(data_dir=Path(tmp))
        names = TopicNames(f"demo-{uuid.uuid4().hex[:8]}" if settings.bootstrap else "stakewatch")
        console.rule("[bold]Stakewatch demo[/bold] — the Scale AI case")
        console.print("[dim]starting the embedded broker and the worker…[/dim]")
        settings = settings.model_copy(update={"topic_prefix": names.prefix})
        key = snapshot_key(settings)
        async with broker_session(settings, listed=False) as conn:
            return await _run(
                conn.bootstrap, names, lines, pace, follow, console, conn.client_options, key
            )


async def _run(
    bootstrap: str,
    names: TopicNames,
    lines: list[bytes],
    pace: float,
    follow: bool,
    console: Console,
    client: Mapping[str, Any],
    key: SnapshotKey | None,
) -> int:
    options = WorkerOptions(
        bootstrap,
        names=names,
        session_timeout=2.0,
        heartbeat_interval=0.5,
        worker_id="demo",
        client=client,
        snapshot_key=key,
    )
    worker = Worker(options)
    await worker.start()
    receiver = ConsoleReceiver(console=console, rules=options.config)
    shown = 0
    tail = make_consumer(bootstrap, client, enable_auto_commit=False, fetch_max_wait_ms=50)
    producer = make_producer(bootstrap, client, linger_ms=0)
    await tail.start()
    await producer.start()
    tp = TopicPartition(names.alerts, 0)
    tail.assign([tp])
    tail.seek(tp, 0)

    async def render_available(wait_ms: int) -> None:
        nonlocal shown
        batch = await tail.getmany(tp, timeout_ms=wait_ms)
        for record in batch.get(tp, ()):
            await receiver.deliver(DeliveredRecord.from_json(record.value))
            shown += 1

    try:
        await asyncio.wait_for(worker.assigned.wait(), 30)
        console.print(f"[dim]worker up; broker {bootstrap}; publishing {len(lines)} events[/dim]")
        for raw in lines:
            event = decode(raw)
            if isinstance(event, Rejection):
                await producer.send_and_wait(
                    names.dead_letter, raw, headers=dead_letter_headers(event)
                )
                console.print(f"[yellow]dead-lettered[/yellow] {event}")
                continue
            if pace and event.type in _PAUSE_BEFORE:
                await _drain(worker, render_available, pace)
                console.print(f"[dim]{event.time:%Y-%m-%d} {event.type} {_gist(event)}[/dim]")
            topic, record_key = route(names, event)
            await producer.send_and_wait(
                topic, raw, key=record_key, timestamp_ms=event_time_ms(event.time)
            )
        await _drain(worker, render_available, 0.5, until_applied=len(lines))
        open_now = len(worker.engine.open)
        console.rule(
            f"{worker.counts['applied']} events applied, {shown} alert records, "
            f"{open_now} conflicts open"
        )
        if follow:
            console.print(
                "Still watching. Publish more from another shell with\n"
                f"  STAKEWATCH_BROKER=kafka://{bootstrap} STAKEWATCH_TOPIC_PREFIX={names.prefix}"
                " stakewatch replay FILE\nCtrl-C to stop."
            )
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            installed = on_signals(loop, stop.set)
            try:
                while not stop.is_set():
                    await render_available(200)
            finally:
                for sig in installed:
                    loop.remove_signal_handler(sig)
    finally:
        await producer.stop()
        await tail.stop()
        await worker.stop()
    return shown


async def _drain(worker: Worker, render, seconds: float, until_applied: int | None = None):
    """Show what has fired so far, for at least ``seconds`` (and until all is applied)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    limit = loop.time() + 30
    while loop.time() < deadline or (
        until_applied is not None
        and worker.counts["applied"] + worker.counts["rejected"] < until_applied
        and loop.time() < limit
    ):
        await render(100)
    await render(100)


def _gist(event) -> str:
    d = event.data
    if event.type == "ownership.stake":
        return f"{d.owner} → {d.asset} {d.percent:g}% ({d.status})"
    return getattr(d, "contract_id", "")
