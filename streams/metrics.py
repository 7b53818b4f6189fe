"""Every Prometheus metric the worker exports, in one class that takes its `CollectorRegistry`.

Names are prefixed `stakewatch_`. Every label has a bounded set of values (see LABEL BOUNDS
below and docs/observability.md): enumerated labels map anything unexpected to `_other`,
open-ended ones (topics, receivers, tables) keep the first few distinct values and fold the
rest into `_other`, and per-entity exposure is limited to a top-N plus a configured watch list,
with everything else summed under `_other`. Instrumentation never raises on a bad label value:
a typo shows up as an `_other` series, not as a crashed agent.

LABEL BOUNDS
- `topic`: first `max_label_values` (32) distinct topic names, then `_other`.
- `type`: the 8 SPEC event types, else `_other` (undecodable records, unknown types).
- `outcome` (events): applied | rejected | duplicate | redelivered.
- `reason`: the 11 rejection codes of docs/decisions.md, else `_other`.
- `severity`: critical | high | warning.
- `status` (alerts): firing | resolved.
- `receiver`: first `max_label_values` (32) distinct receiver names, then `_other`.
- `outcome` (deliveries): delivered | failed | suppressed.
- `table`: first `max_label_values` (32) distinct table names, then `_other`.
- `state` (recovery): starting | recovering | running | stopping.
- `rival`, `client`: watch list + top `top_n` (20) by spend at risk, + `_other`.
- `client`, `vendor`, `rival`, `severity`, `pending` on the top-conflict gauges: the top
  `top_conflicts` (20) open conflicts by spend at risk, + one `_other` row.
"""

from __future__ import annotations

import math
import platform
import threading
import time
from bisect import bisect_left, bisect_right
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Final, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector

from streams.engine.rules import SEVERITIES as _SEVERITIES
from streams.engine.rules import STATUSES
from streams.events import RejectionCode
from streams.events.models import EVENT_TYPES as _EVENT_TYPES

__all__ = [
    "CONTENT_TYPE",
    "DEAD_LETTER_REASONS",
    "DELIVERY_OUTCOMES",
    "EVENT_OUTCOMES",
    "EVENT_TYPES",
    "LATENCY_BUCKETS",
    "OTHER",
    "RECOVERY_STATES",
    "SEVERITIES",
    "ConflictFigures",
    "Exposure",
    "Metrics",
    "bound_top_n",
    "sample_names_of",
    "summarize_exposure",
]

PREFIX: Final = "stakewatch"
OTHER: Final = "_other"
CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
MAX_WATCH: Final = 200

EVENT_TYPES: Final = _EVENT_TYPES
EVENT_OUTCOMES: Final = ("applied", "rejected", "duplicate", "redelivered")
DEAD_LETTER_REASONS: Final = tuple(code.value for code in RejectionCode)
SEVERITIES: Final = _SEVERITIES
ALERT_STATUSES: Final = STATUSES
DELIVERY_OUTCOMES: Final = ("delivered", "failed", "suppressed")
RECOVERY_STATES: Final = ("starting", "recovering", "running", "stopping")

# Record timestamp → applied, and event → alert: the target is well under a second, but a
# replay of old history or a recovery shows minutes, so the buckets reach 10 minutes.
LATENCY_BUCKETS: Final = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.0,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
    600.0,
)

Exposure = tuple[float, int]
"""(spend at risk in USD, number of open conflicts)."""


class ConflictFigures(Protocol):
    """The figures `Metrics.set_conflicts` reads from an open conflict: its latest firing
    `AlertRecord` fits (so does `record.to_dict()`)."""

    @property
    def client(self) -> str: ...
    @property
    def vendor(self) -> str: ...
    @property
    def rival(self) -> str: ...
    @property
    def severity(self) -> str: ...
    @property
    def stake(self) -> float: ...
    @property
    def pending(self) -> bool: ...
    @property
    def spend_365d(self) -> float: ...


class _Enumerated:
    """A label whose values are a fixed set; anything else is `_other`."""

    def __init__(self, values: Iterable[str]) -> None:
        self.values = frozenset(values)

    def __call__(self, value: object) -> str:
        return value if isinstance(value, str) and value in self.values else OTHER


class _FirstSeen:
    """An open-ended label: the first `limit` distinct values are kept, later ones are `_other`."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, value: object) -> str:
        if not isinstance(value, str) or not value or value == OTHER:
            return OTHER
        if value in self._seen:
            return value
        with self._lock:
            if len(self._seen) < self.limit:
                self._seen.add(value)
                return value
        return OTHER


def bound_top_n(
    values: Mapping[str, Exposure], *, top_n: int, watch: Iterable[str] = ()
) -> dict[str, Exposure]:
    """Keep the watch list (zero when absent) and the top `top_n` others by spend, then count,
    then name; sum the rest under `_other` (always present, so the series set is stable)."""
    watched = {name: values.get(name, (0.0, 0)) for name in watch}
    rest = sorted(
        ((name, v) for name, v in values.items() if name not in watched),
        key=lambda item: (-item[1][0], -item[1][1], item[0]),
    )
    kept = dict(watched)
    kept.update(rest[:top_n])
    folded = rest[top_n:]
    kept[OTHER] = (math.fsum(v[0] for _, v in folded), sum(v[1] for _, v in folded))
    return kept


@dataclass(frozen=True, slots=True)
class _Conflict:
    client: str
    vendor: str
    rival: str
    severity: str
    stake: float
    pending: bool
    spend_365d: float


def _read(conflict: ConflictFigures | Mapping[str, Any]) -> _Conflict:
    if isinstance(conflict, Mapping):
        get = conflict.__getitem__
    else:

        def get(field: str) -> Any:
            return getattr(conflict, field)

    return _Conflict(
        client=str(get("client")),
        vendor=str(get("vendor")),
        rival=str(get("rival")),
        severity=str(get("severity")),
        stake=float(get("stake")),
        pending=bool(get("pending")),
        spend_365d=float(get("spend_365d")),
    )


def summarize_exposure(
    conflicts: Iterable[ConflictFigures | Mapping[str, Any]],
) -> tuple[dict[str, Exposure], dict[str, Exposure]]:
    """Spend at risk and conflict count per rival and per client, from the open conflicts.

    A client's spend at risk is its trailing-year spend with every vendor that is in at least
    one open conflict, each vendor counted once however many rivals hold it; a rival's is the
    spend of every (client, vendor) pair it conflicts with.
    """
    by_rival: dict[str, Exposure] = {}
    by_client: dict[str, Exposure] = {}
    pairs_seen: set[tuple[str, str]] = set()
    for c in map(_read, conflicts):
        spend, count = by_rival.get(c.rival, (0.0, 0))
        by_rival[c.rival] = (spend + c.spend_365d, count + 1)
        spend, count = by_client.get(c.client, (0.0, 0))
        first = (c.client, c.vendor) not in pairs_seen
        pairs_seen.add((c.client, c.vendor))
        by_client[c.client] = (spend + (c.spend_365d if first else 0.0), count + 1)
    return by_rival, by_client


class _SnapshotCollector:
    """Gauge families replaced whole on each update, so a scrape never sees half a snapshot
    and entities that left the top-N disappear instead of going stale."""

    def __init__(self, specs: Mapping[str, tuple[str, tuple[str, ...]]]) -> None:
        self._specs = dict(specs)
        self._samples: dict[str, list[tuple[tuple[str, ...], float]]] = {n: [] for n in specs}

    def replace(self, samples: Mapping[str, list[tuple[tuple[str, ...], float]]]) -> None:
        merged = dict(self._samples)
        merged.update(samples)
        self._samples = merged  # one reference swap: collect() sees old or new, never a mix

    def describe(self) -> Iterator[Metric]:
        for name, (doc, labels) in self._specs.items():
            yield GaugeMetricFamily(name, doc, labels=labels)

    def collect(self) -> Iterator[Metric]:
        samples = self._samples
        for name, (doc, labels) in self._specs.items():
            family = GaugeMetricFamily(name, doc, labels=labels)
            for values, value in samples[name]:
                family.add_metric(values, value)
            yield family


def observe_many(histogram: Any, values: Iterable[float]) -> None:
    """``histogram.observe(v)`` for every ``v`` (negatives as 0), one increment per bucket.

    Uses the histogram child's bucket counters directly (prometheus-client's own
    ``observe`` takes a lock per call); any other object gets plain ``observe`` calls.
    """
    bounds = getattr(histogram, "_upper_bounds", None)
    buckets = getattr(histogram, "_buckets", None)
    total = getattr(histogram, "_sum", None)
    if bounds is None or buckets is None or total is None or len(bounds) != len(buckets):
        for v in values:
            histogram.observe(max(0.0, v))
        return
    ordered = sorted(values)  # in C; the worker's come in event-time order: near linear
    summed = math.fsum(ordered[bisect_left(ordered, 0.0) :])
    counts = []
    below = 0
    for bound in bounds:  # the first bound >= v, as observe picks: count v <= bound
        upto = bisect_right(ordered, bound)
        counts.append(upto - below)
        below = upto
    for bucket, n in zip(buckets, counts, strict=True):
        if n:
            bucket.inc(n)
    total.inc(summed)


class Metrics:
    """Every metric of the worker; the worker calls the small methods below as things happen.

    `registry` is passed in (tests use a fresh `CollectorRegistry()`); `clock` returns wall
    time in seconds and only stamps start and last-event times.
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        version: str | None = None,
        top_n: int = 20,
        top_conflicts: int = 20,
        watch_rivals: Iterable[str] = (),
        watch_clients: Iterable[str] = (),
        max_label_values: int = 32,
        clock: Callable[[], float] = time.time,
        process_metrics: bool = True,
    ) -> None:
        if top_n < 0 or top_conflicts < 0:
            raise ValueError("top_n and top_conflicts must be >= 0")
        self.registry = registry
        self.top_n = top_n
        self.top_conflicts = top_conflicts
        self.watch_rivals = tuple(dict.fromkeys(watch_rivals))
        self.watch_clients = tuple(dict.fromkeys(watch_clients))
        for setting, watch in (
            ("watch_rivals", self.watch_rivals),
            ("watch_clients", self.watch_clients),
        ):
            if len(watch) > 200:
                raise ValueError(f"{setting}: at most 200 entries, got {len(watch)}")
        self._clock = clock

        self._topic = _FirstSeen(max_label_values)
        self._receiver = _FirstSeen(max_label_values)
        self._table = _FirstSeen(max_label_values)
        self._type = _Enumerated(EVENT_TYPES)
        self._outcome = _Enumerated(EVENT_OUTCOMES)
        self._reason = _Enumerated(DEAD_LETTER_REASONS)
        self._severity = _Enumerated(SEVERITIES)
        self._status = _Enumerated(ALERT_STATUSES)
        self._delivery_outcome = _Enumerated(DELIVERY_OUTCOMES)

        self._events_in()
        self._alerts()
        self._exposure_gauges()
        self._delivery()
        self._worker(version, clock, process_metrics)

    def _events_in(self) -> None:
        """Input records: consumed, dead-lettered, their latency, the last one."""
        self.events_consumed = Counter(
            _name("events_consumed"),
            "Records consumed from the input topics, by topic, event type and outcome.",
            ["topic", "type", "outcome"],
            registry=self.registry,
        )
        self.dead_letters = Counter(
            _name("dead_letters"),
            "Records written to the dead-letter topic, by source topic and rejection code.",
            ["topic", "reason"],
            registry=self.registry,
        )
        self.processing_latency = Histogram(
            _name("processing_latency_seconds"),
            "Kafka record timestamp to the event being applied, in seconds.",
            ["topic"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.last_event = Gauge(
            _name("last_event_consumed_timestamp_seconds"),
            "Wall-clock time the last input record was consumed (0 before the first).",
            registry=self.registry,
        )

    def _alerts(self) -> None:
        """Alert records published, their latency, open conflicts by severity."""
        self.alerts = Counter(
            _name("alerts"),
            "Alert records published on the alerts topic, by status and severity.",
            ["status", "severity"],
            registry=self.registry,
        )
        self.alert_latency = Histogram(
            _name("event_to_alert_latency_seconds"),
            "Record timestamp of the causing event to its alert record being published.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.open_conflicts = Gauge(
            _name("open_conflicts"),
            "Open conflicts by severity.",
            ["severity"],
            registry=self.registry,
        )

    def _exposure_gauges(self) -> None:
        """Spend at risk and open conflicts per rival and client; the top conflicts."""
        self._exposure = _SnapshotCollector(
            {
                _name("rival_spend_at_risk_usd"): (
                    "Trailing-year spend of clients with vendors a rival has a conflicting stake "
                    "in (watch list + top-N rivals, the rest under _other).",
                    ("rival",),
                ),
                _name("rival_open_conflicts"): (
                    "Open conflicts per rival (watch list + top-N, the rest under _other).",
                    ("rival",),
                ),
                _name("client_spend_at_risk_usd"): (
                    "Client's trailing-year spend with vendors in an open conflict "
                    "(watch list + top-N clients, the rest under _other).",
                    ("client",),
                ),
                _name("client_open_conflicts"): (
                    "Open conflicts per client (watch list + top-N, the rest under _other).",
                    ("client",),
                ),
                _name("top_conflict_spend_at_risk_usd"): (
                    "Trailing-year client-vendor spend of the top open conflicts by spend "
                    "(the rest summed in one _other row).",
                    ("client", "vendor", "rival", "severity", "pending"),
                ),
                _name("top_conflict_stake_percent"): (
                    "Effective stake of the rival in the vendor, for the top open conflicts.",
                    ("client", "vendor", "rival", "severity", "pending"),
                ),
            }
        )
        self.registry.register(self._exposure)
        self.set_conflicts(())

    def _delivery(self) -> None:
        """Deliveries to receivers, retries, queue depth, backpressure."""
        self.deliveries = Counter(
            _name("alert_deliveries"),
            "Alert records handed to receivers, by receiver and final outcome.",
            ["receiver", "outcome"],
            registry=self.registry,
        )
        self.delivery_retries = Counter(
            _name("alert_delivery_retries"),
            "Delivery attempts retried (5xx, 429, network errors), by receiver.",
            ["receiver"],
            registry=self.registry,
        )
        self.delivery_queue_depth = Gauge(
            _name("alert_delivery_queue_depth"),
            "Alert records waiting to be delivered, by receiver.",
            ["receiver"],
            registry=self.registry,
        )
        self.delivery_backpressure = Counter(
            _name("alert_delivery_backpressure"),
            "Times delivery stopped reading the alerts topic because its queue limit "
            "(max_pending records not yet delivered) was reached.",
            registry=self.registry,
        )

    def _worker(
        self, version: str | None, clock: Callable[[], float], process_metrics: bool
    ) -> None:
        """Lag, table sizes, over-allocated assets, rebalances, recovery state, build."""
        self.consumer_lag = Gauge(
            _name("consumer_lag_records"),
            "Records between the committed offset and the end of the assigned partitions.",
            ["topic"],
            registry=self.registry,
        )
        self.table_entries = Gauge(
            _name("table_entries"),
            "Entries in the engine state this worker holds in memory (holdings, contracts, ...).",
            ["table"],
            registry=self.registry,
        )
        self.overallocated_assets = Gauge(
            _name("overallocated_assets"),
            "Assets whose holdings claim more than 100 % (held, or with pending in place of "
            "held); each counts pro rata (SPEC §2).",
            registry=self.registry,
        )
        self.rebalances = Counter(
            _name("rebalances"),
            "Consumer group rebalances seen by this worker.",
            registry=self.registry,
        )
        self.recovery_state = Gauge(
            _name("recovery_state"),
            "1 for the worker's current state (starting, recovering, running, stopping).",
            ["state"],
            registry=self.registry,
        )
        self.set_recovery_state("starting")
        self.start_time = Gauge(
            _name("start_time_seconds"),
            "Wall-clock time this worker's metrics were created.",
            registry=self.registry,
        )
        self.start_time.set(clock())
        self.build_info = Gauge(
            _name("build_info"),
            "Always 1; labels carry the Stakewatch version and the Python version.",
            ["version", "python"],
            registry=self.registry,
        )
        self.build_info.labels(version or _version(), platform.python_version()).set(1)
        if process_metrics:
            ProcessCollector(namespace=PREFIX, registry=self.registry)

    # -- events in ------------------------------------------------------------------------
    def observe_applied(self, topic: str, event_type: str, latency_s: float) -> None:
        """An input record was applied to the state; `latency_s` = now - record timestamp."""
        self._consumed(topic, event_type, "applied")
        self.processing_latency.labels(self._topic(topic)).observe(max(0.0, latency_s))

    def observe_applied_batch(
        self, counts: Mapping[tuple[str, str], int], latencies: Mapping[str, list[float]]
    ) -> None:
        """``observe_applied`` for a whole batch at once: ``counts`` per (topic, event type),
        ``latencies`` per topic. The worker's hot path tallies in plain dicts and lists; one
        label lookup and one locked increment per series and bucket instead of per event."""
        if not counts:
            return
        for (topic, event_type), n in counts.items():
            self._consumed(topic, event_type, "applied", n)
        for topic, values in latencies.items():
            observe_many(self.processing_latency.labels(self._topic(topic)), values)

    def observe_rejected(
        self, topic: str, event_type: str | None, reason: str, *, dead_lettered: bool = True
    ) -> None:
        """An input record was rejected (`event_type` None if undecodable). Pass
        `dead_lettered=False` when another worker writes its dead letter (every worker reads
        every record, only the partition's lease holder dead-letters it), so that
        `dead_letters_total` summed over workers counts each dead letter once."""
        self._consumed(topic, event_type, "rejected")
        if dead_lettered:
            self.observe_dead_letter(topic, reason)

    def observe_duplicate(self, topic: str, event_type: str) -> None:
        """A repeat of an already applied (source, id) at a new offset: ignored."""
        self._consumed(topic, event_type, "duplicate")

    def observe_redelivered(self, topic: str, event_type: str | None) -> None:
        """A record re-read at an offset already processed (after a crash or rebalance)."""
        self._consumed(topic, event_type, "redelivered")

    def observe_dead_letter(self, topic: str, reason: str) -> None:
        """A record written to the dead-letter topic without being consumed as an event."""
        self.dead_letters.labels(self._topic(topic), self._reason(reason)).inc()

    def _consumed(self, topic: str, event_type: str | None, outcome: str, n: int = 1) -> None:
        labels = (self._topic(topic), self._type(event_type), self._outcome(outcome))
        self.events_consumed.labels(*labels).inc(n)
        self.last_event.set(self._clock())

    # -- alerts ---------------------------------------------------------------------------
    def observe_alert(self, status: str, severity: str, latency_s: float) -> None:
        """An alert record was published; `latency_s` = now - causing record's timestamp."""
        self.alerts.labels(self._status(status), self._severity(severity)).inc()
        self.alert_latency.observe(max(0.0, latency_s))

    def set_open_conflicts(self, by_severity: Mapping[str, int]) -> None:
        """Open conflicts per severity (missing severities are 0)."""
        for severity in SEVERITIES:
            self.open_conflicts.labels(severity).set(by_severity.get(severity, 0))

    def set_exposure(
        self, by_rival: Mapping[str, Exposure], by_client: Mapping[str, Exposure]
    ) -> None:
        """Spend at risk and conflict count per rival and per client, bounded by the top-N rule."""
        rivals = bound_top_n(by_rival, top_n=self.top_n, watch=self.watch_rivals)
        clients = bound_top_n(by_client, top_n=self.top_n, watch=self.watch_clients)
        p = PREFIX
        self._exposure.replace(
            {
                f"{p}_rival_spend_at_risk_usd": [((k,), v[0]) for k, v in rivals.items()],
                f"{p}_rival_open_conflicts": [((k,), v[1]) for k, v in rivals.items()],
                f"{p}_client_spend_at_risk_usd": [((k,), v[0]) for k, v in clients.items()],
                f"{p}_client_open_conflicts": [((k,), v[1]) for k, v in clients.items()],
            }
        )

    def set_conflicts(self, conflicts: Iterable[ConflictFigures | Mapping[str, Any]]) -> None:
        """Everything derived from the open conflicts at once: severities, exposure per rival
        and per client, and the top conflicts. Call it when the open set or its figures
        change (a timer every few seconds is enough; it is O(open conflicts))."""
        items = [_read(c) for c in conflicts]
        severities: dict[str, int] = {}
        for c in items:
            severities[c.severity] = severities.get(c.severity, 0) + 1
        self.set_open_conflicts(severities)
        self.set_exposure(*summarize_exposure(items))
        ranked = sorted(items, key=lambda c: (-c.spend_365d, -c.stake, c.client, c.vendor, c.rival))
        top, rest = ranked[: self.top_conflicts], ranked[self.top_conflicts :]
        spend = [(self._conflict_labels(c), c.spend_365d) for c in top]
        stake = [(self._conflict_labels(c), c.stake) for c in top]
        spend.append(((OTHER,) * 5, math.fsum(c.spend_365d for c in rest)))
        p = PREFIX
        self._exposure.replace(
            {f"{p}_top_conflict_spend_at_risk_usd": spend, f"{p}_top_conflict_stake_percent": stake}
        )

    def _conflict_labels(self, c: _Conflict) -> tuple[str, ...]:
        pending = "true" if c.pending else "false"
        return (c.client, c.vendor, c.rival, self._severity(c.severity), pending)

    # -- delivery -------------------------------------------------------------------------
    def observe_delivery(self, receiver: str, outcome: str) -> None:
        """A record's delivery to one receiver ended: delivered, failed (permanent, given up)
        or suppressed (already told per the notification log, or --no-deliver)."""
        self.deliveries.labels(self._receiver(receiver), self._delivery_outcome(outcome)).inc()

    def observe_delivery_retry(self, receiver: str) -> None:
        """One delivery attempt to `receiver` failed retryably and will be tried again."""
        self.delivery_retries.labels(self._receiver(receiver)).inc()

    def set_delivery_queue_depth(self, receiver: str, depth: int) -> None:
        """Records queued for `receiver` (waiting for rate limit, backoff or first attempt)."""
        self.delivery_queue_depth.labels(self._receiver(receiver)).set(depth)

    def observe_delivery_backpressure(self) -> None:
        """Delivery hit its queue limit and stopped reading until records are delivered."""
        self.delivery_backpressure.inc()

    # -- worker ---------------------------------------------------------------------------
    def set_consumer_lag(self, lag_by_topic: Mapping[str, int]) -> None:
        """Lag per topic, summed over this worker's assigned partitions; topics no longer
        assigned are dropped (call after each rebalance and periodically)."""
        self.consumer_lag.clear()
        summed: dict[str, int] = {}
        for topic, lag in lag_by_topic.items():
            label = self._topic(topic)
            summed[label] = summed.get(label, 0) + max(0, lag)
        for label, lag in summed.items():
            self.consumer_lag.labels(label).set(lag)

    def set_table_sizes(self, sizes: Mapping[str, int]) -> None:
        """Number of keys in each table held by this worker."""
        for table, size in sizes.items():
            self.table_entries.labels(self._table(table)).set(size)

    def set_overallocated(self, assets: int) -> None:
        """How many assets are over-allocated in the engine's state now."""
        self.overallocated_assets.set(assets)

    def observe_rebalance(self) -> None:
        """The consumer group rebalanced (call from the app's on_rebalance_start)."""
        self.rebalances.inc()

    def set_recovery_state(self, state: str) -> None:
        """starting → recovering (tables from changelogs) → running → stopping."""
        if state not in RECOVERY_STATES:
            raise ValueError(f"recovery state must be one of {RECOVERY_STATES}, got {state!r}")
        for s in RECOVERY_STATES:
            self.recovery_state.labels(s).set(1 if s == state else 0)

    # -- exposition -----------------------------------------------------------------------
    def render(self) -> bytes:
        """The registry in the Prometheus text exposition format (0.0.4)."""
        return generate_latest(self.registry)

    def aiohttp_handler(self) -> Callable[[Any], Awaitable[Any]]:
        """An aiohttp handler for `GET /metrics`; streams/web.py routes it beside /healthz:
        `app.router.add_get("/metrics", metrics.aiohttp_handler())`."""
        from aiohttp import web

        async def handle_metrics(request: web.Request) -> web.Response:
            return web.Response(body=self.render(), headers={"Content-Type": CONTENT_TYPE})

        return handle_metrics

    def sample_names(self) -> frozenset[str]:
        """Every sample name this registry can expose (`_total`, `_bucket`, … included)."""
        return sample_names_of(self.registry.collect())


_SUFFIXES: Final = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("_sum", "_count", "_created", ""),
    "info": ("_info",),
}


def _name(suffix: str) -> str:
    return f"{PREFIX}_{suffix}"


def sample_names_of(families: Iterable[Metric]) -> frozenset[str]:
    """Sample names the families can expose, whether or not they have samples yet. Takes a
    registry's `collect()` or the families parsed from a scrape, so a test can check that a
    running worker exposes exactly what `Metrics.sample_names()` promises."""
    names: set[str] = set()
    for family in families:
        for suffix in _SUFFIXES.get(family.type, ("",)):
            names.add(family.name + suffix)
        names.update(s.name for s in family.samples)
    return frozenset(names)


def _version() -> str:
    try:
        return metadata.version("stakewatch")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "unknown"
