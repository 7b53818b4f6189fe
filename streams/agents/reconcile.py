"""Reconcile: after a replay from scratch, resolve what the alerts topic still shows open.

A new rule set, or a rebuild from a time, may never fire some conflicts again that the
alerts topic last showed firing; no ``resolved`` would follow. Once a replay from scratch
has caught up, the worker reads the topic to its true end and publishes, for the clients
whose leases it holds, a ``resolved`` record (``event_id: "rebuild"``) for each such
conflict the rebuilt state does not hold open. The engine makes the record: the figures at
the watermark, as every ``resolved`` record carries them (docs/decisions.md).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
import structlog
from aiokafka import TopicPartition

from streams.agents.apply import alert_cloudevent
from streams.agents.leases import Held
from streams.agents.outbox import Outbox
from streams.engine import SEVERITIES, STATUSES, AlertRecord, Engine
from streams.engine.records import format_micros
from streams.kafka.clients import make_consumer
from streams.kafka.partitions import read_to_end
from streams.kafka.topics import TopicNames

__all__ = ["REBUILD_EVENT", "last_published", "publish_stale", "stale_records"]

log = structlog.get_logger("stakewatch.worker")

REBUILD_EVENT = "rebuild"  # the event_id of the records a reconciliation publishes


async def last_published(
    bootstrap: str, client: Mapping[str, Any], topic: str
) -> dict[str, tuple[str, str]]:
    """The last (status, severity) the alerts topic shows per conflict, read to its end."""
    consumer = make_consumer(bootstrap, client, enable_auto_commit=False, fetch_max_wait_ms=50)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        return _last_states(r.value for r in await read_to_end(consumer, tp))
    finally:
        await consumer.stop()


def stale_records(
    engine: Engine, published: Mapping[str, tuple[str, str]], held: Held
) -> list[AlertRecord]:
    """``resolved`` records for the conflicts shown firing that the engine does not hold
    open, among the clients ``held`` publishes for; in dedup-key order."""
    stamp = "" if engine.watermark is None else format_micros(engine.watermark)
    out = []
    for key, (status, severity) in sorted(published.items()):
        client, vendor, rival = key.split("|")
        if status != "firing" or key in engine.open or not held.owns(client):
            continue
        out.append(engine.resolved_record(client, vendor, rival, severity, REBUILD_EVENT, stamp))
    return out


async def publish_stale(
    outbox: Outbox,
    bootstrap: str,
    client: Mapping[str, Any],
    names: TopicNames,
    engine: Engine,
    held: Held,
    counts: Counter[str],
) -> None:
    """Read the alerts topic to its end and hand the stale conflicts' ``resolved`` records
    to the outbox (the caller flushed it first: the topic shows what it sent)."""
    published = await last_published(bootstrap, client, names.alerts)
    stale = stale_records(engine, published, held)
    await outbox.send(
        (
            names.alerts,
            r.to_json(),
            r.dedup_key.encode(),
            alert_cloudevent(r, names.prefix, f"{REBUILD_EVENT}/{r.event_time}"),
        )
        for r in stale
    )
    for record in stale:
        counts["alerts_resolved"] += 1
        log.info(
            "alert",
            dedup_key=record.dedup_key,
            status="resolved",
            reason="no longer open after rebuild",
        )
    if stale:
        log.info("reconciled alerts topic after a rebuild", resolved=len(stale))


def _last_states(values: Iterable[bytes | None]) -> dict[str, tuple[str, str]]:
    """Validated at the boundary: a record that is not an alert record is skipped."""
    last: dict[str, tuple[str, str]] = {}
    for value in values:
        try:
            doc = orjson.loads(value or b"")
        except orjson.JSONDecodeError:
            continue
        if not isinstance(doc, dict):
            continue
        key, status, severity = doc.get("dedup_key"), doc.get("status"), doc.get("severity")
        if (
            isinstance(key, str)
            and key.count("|") == 2
            and status in STATUSES
            and severity in SEVERITIES
        ):
            last[key] = (status, severity)
    return last
