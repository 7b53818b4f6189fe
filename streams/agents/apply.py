"""Apply: merged records through the ledger, and what to publish for them.

The hot path. Most records are spends of common shape, so a record costs the ledger
(decode, engine, provenance), a few dict operations and, for the rare record that causes
an alert or is rejected, an output: the alert record for the alerts topic when this worker
holds the client's lease, the original bytes for the dead-letter topic when it holds the
input partition's. Metrics are tallied here and handed over once per batch.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable

import structlog

from streams.agents.clock import Clock
from streams.agents.ingest import Positions
from streams.agents.leases import Held
from streams.agents.merge import Fetched
from streams.agents.outbox import Output
from streams.engine import AlertRecord, shown_stake
from streams.engine.engine import Allocation
from streams.engine.ledger import Ledger
from streams.events import Rejection, RejectionCode
from streams.events.kafka_binding import cloudevent_headers, structured
from streams.kafka.headers import alert_headers, dead_letter_headers
from streams.kafka.topics import TopicNames
from streams.metrics import Metrics

__all__ = ["Applier", "alert_cloudevent"]

log = structlog.get_logger("stakewatch.worker")


class Applier:
    """Applies batches for one worker; ``counts`` and ``listeners`` are the worker's."""

    def __init__(
        self,
        names: TopicNames,
        clock: Clock,
        counts: Counter[str],
        listeners: list[Callable[[AlertRecord], None]],
        metrics: Metrics | None = None,
    ) -> None:
        self.names = names
        self.clock = clock
        self.counts = counts
        self.listeners = listeners
        self.metrics = metrics

    def apply(
        self,
        records: Iterable[Fetched],
        ledger: Ledger,
        positions: Positions,
        held: Held,
        since: int | None = None,
    ) -> list[Output]:
        """Apply records (in merged order) and move ``positions`` past each; the records to
        produce, already filtered by lease. ``since`` (a rebuild from a time, ms): older
        records are skipped."""
        out: list[Output] = []
        process = ledger.process
        metrics = self.metrics
        wall = self.clock.wall()
        now = int(wall * 1_000_000)  # the one wall-clock reading the engine gets (`future`)
        applied: dict[str, dict[str, int]] = {}  # topic -> event type -> count
        latencies: dict[str, list[float]] = {}
        n_applied = 0
        for r in records:
            topic = r.topic
            positions[(topic, r.partition)] = r.offset + 1
            if since is not None and r.timestamp < since:
                self.counts["skipped"] += 1
                continue
            raw = r.value or b""
            if r.headers:  # binary content mode: the same event, structured (SPEC v2 §1)
                made = structured(raw, r.headers)
                if isinstance(made, Rejection):
                    self._rejected(r, made, None, held, out)
                    continue
                raw = made
            event_type, outcome = process(raw, now)
            if outcome.rejection is not None:
                self._rejected(r, outcome.rejection, event_type, held, out)
                continue
            n_applied += 1
            if metrics is not None:
                assert event_type is not None
                lag = wall - r.timestamp / 1000
                types = applied.get(topic)
                if types is None:
                    types = applied[topic] = {}
                    latencies[topic] = []
                types[event_type] = types.get(event_type, 0) + 1
                latencies[topic].append(lag)
            if outcome.records:
                self._publish(r, outcome.records, wall, held, out)
            if outcome.allocations:
                _report_allocations(outcome.allocations)
        self.counts["applied"] += n_applied
        if metrics is not None:
            metrics.observe_applied_batch(
                {(t, e): n for t, types in applied.items() for e, n in types.items()}, latencies
            )
        return out

    def _rejected(
        self,
        r: Fetched,
        rejection: Rejection,
        event_type: str | None,
        held: Held,
        out: list[Output],
    ) -> None:
        """Dead-letter a rejected record (if its partition is ours) and count it: the
        original value and headers (a binary record's attributes), then the reason."""
        self.counts["rejected"] += 1
        owned = held.owns_partition(r.partition)
        if owned:
            reason = dead_letter_headers(
                rejection, source_topic=r.topic, partition=r.partition, offset=r.offset
            )
            headers = [*(r.headers or ()), *reason]
            out.append((self.names.dead_letter, r.value or b"", r.key, headers))
            log.warning(
                "dead letter",
                reason=str(rejection),
                topic=r.topic,
                partition=r.partition,
                offset=r.offset,
            )
        metrics = self.metrics
        if metrics is not None:
            if rejection.code is RejectionCode.DUPLICATE:
                metrics.observe_duplicate(r.topic, event_type or "_other")
                if owned:
                    metrics.observe_dead_letter(r.topic, rejection.code)
            else:
                metrics.observe_rejected(r.topic, event_type, rejection.code, dead_lettered=owned)

    def _publish(
        self,
        r: Fetched,
        records: Iterable[AlertRecord],
        wall: float,
        held: Held,
        out: list[Output],
    ) -> None:
        """Tell the listeners every record; queue ours for the alerts topic."""
        metrics = self.metrics
        for record in records:
            for listener in self.listeners:
                listener(record)
            if not held.owns(record.client):
                continue
            self.counts[f"alerts_{record.status}"] += 1
            log.info(
                "alert",
                dedup_key=record.dedup_key,
                status=record.status,
                severity=record.severity,
                event_id=record.event_id,
                topic=r.topic,
                partition=r.partition,
                offset=r.offset,
            )
            headers = alert_headers(r) + alert_cloudevent(
                record, self.names.prefix, f"{r.topic}/{r.partition}/{r.offset}"
            )
            out.append((self.names.alerts, record.to_json(), record.dedup_key.encode(), headers))
            if metrics is not None:
                metrics.observe_alert(
                    record.status, record.severity, max(wall - r.timestamp / 1000, 0.0)
                )


def alert_cloudevent(record: AlertRecord, prefix: str, cause: str) -> list[tuple[str, bytes]]:
    """An alert record's CloudEvents attributes (binary mode, docs/architecture.md): the id
    unique per record (``cause``: what caused it) and the same when a replay publishes it
    again."""
    return cloudevent_headers(
        record.status,
        f"/stakewatch/{prefix}",
        f"{cause}/{record.dedup_key}",
        record.event_time,
        record.dedup_key,
    )


def _report_allocations(allocations: Iterable[Allocation]) -> None:
    """One log line per asset entering or leaving over-allocation (SPEC §2); the gauge
    follows with the worker's state export."""
    for a in allocations:
        log.warning(
            "asset over-allocated" if a.over else "asset no longer over-allocated",
            asset=a.asset,
            claimed_percent=shown_stake(a.claimed),
            claimed_held_percent=shown_stake(a.claimed_held),
        )
