"""Topic declarations and an idempotent ``ensure_topics`` over aiokafka's admin client.

We create topics ourselves instead of letting producers or faust auto-create them: Tansu
auto-creates an unknown topic with 4 partitions on the first metadata request, and its
DescribeConfigs returns only configs set at creation (``docs/notes-faust-tansu.md``), so every
topic is created with explicit partitions and explicit ``retention.ms``/``retention.bytes``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from aiokafka.admin import NewTopic

from streams.events import Event
from streams.events.models import (
    ContractAmendedData,
    ContractSignedData,
    ContractTerminatedData,
    OwnershipData,
    RivalryData,
    SpendData,
)
from streams.kafka.clients import make_admin

__all__ = [
    "TopicMismatchError",
    "TopicNames",
    "TopicSpec",
    "default_topics",
    "ensure_topics",
    "route",
]

_TOPIC_ALREADY_EXISTS = 36
_FOREVER = MappingProxyType({"retention.ms": "-1", "retention.bytes": "-1"})


class TopicMismatchError(RuntimeError):
    """An existing topic has another partition count than declared (e.g. auto-created)."""


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """One topic as we want it. Retention is always explicit (infinite unless given)."""

    name: str
    partitions: int
    replication: int = 1
    config: Mapping[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if not self.name or self.partitions < 1 or self.replication < 1:
            raise ValueError(f"bad topic spec {self!r}")
        object.__setattr__(self, "config", MappingProxyType({**_FOREVER, **self.config}))


@dataclass(frozen=True, slots=True)
class TopicNames:
    """Every topic name, derived from one prefix (``STAKEWATCH_TOPIC_PREFIX``)."""

    prefix: str = "stakewatch"

    @property
    def ownership(self) -> str:
        return f"{self.prefix}.ownership"

    @property
    def contracts(self) -> str:
        return f"{self.prefix}.contracts"

    @property
    def spend(self) -> str:
        return f"{self.prefix}.spend"

    @property
    def reference(self) -> str:
        return f"{self.prefix}.reference"

    @property
    def alerts(self) -> str:
        return f"{self.prefix}.alerts"

    @property
    def dead_letter(self) -> str:
        return f"{self.prefix}.dead-letter"

    @property
    def leases(self) -> str:
        """Empty topic whose partitions the worker group divides: who publishes for whom."""
        return f"{self.prefix}.leases"

    @property
    def snapshots(self) -> str:
        """Engine snapshots with the input offsets they reflect (restart without full replay)."""
        return f"{self.prefix}.snapshots"

    @property
    def notifications(self) -> str:
        """What each alert receiver was told, keyed ``receiver|dedup_key`` (never page twice)."""
        return f"{self.prefix}.notifications"

    @property
    def inputs(self) -> tuple[str, str, str, str]:
        """The event topics, in the order a worker reads them."""
        return (self.reference, self.ownership, self.contracts, self.spend)

    def for_type(self, event_type: str) -> str:
        """The input topic an event type belongs on."""
        kind = event_type.partition(".")[0]
        return {
            "ownership": self.ownership,
            "contract": self.contracts,
            "spend": self.spend,
            "rivalry": self.reference,
            "entity": self.reference,
        }[kind]


def route(names: TopicNames, event: Event) -> tuple[str, bytes]:
    """(topic, key) for one valid event.

    Keys keep SPEC's per-key order where a rule depends on it: a holding's events share the
    asset (stale check per owner/asset pair), a contract's events share its id (amend and
    terminate after sign), a client's spend shares the client (the lease partition that
    decides which worker publishes that client's alerts), a rivalry's events share the
    sorted pair.
    """
    data = event.data
    if isinstance(data, OwnershipData):
        key = data.asset
    elif isinstance(data, ContractSignedData | ContractAmendedData | ContractTerminatedData):
        key = data.contract_id
    elif isinstance(data, SpendData):
        key = data.client
    elif isinstance(data, RivalryData):
        key = "|".join(sorted((data.a, data.b)))
    else:
        key = data.id
    return names.for_type(event.type), key.encode()


def default_topics(
    prefix: str = "stakewatch", partitions: int = 8, replication: int = 1
) -> list[TopicSpec]:
    """The topics Stakewatch reads and writes (rationale in ``docs/architecture.md``), each
    with `replication` replicas (``STAKEWATCH_REPLICATION_FACTOR``: 3 on a real cluster).

    - ``ownership``, ``contracts``, ``spend``: the event log and source of truth, kept
      forever, ``partitions`` each (keys: see ``route``).
    - ``reference`` (rivalries, entity names): 1 partition, kept forever; low volume,
      and one total order makes declare/withdraw sequences unambiguous.
    - ``alerts``: 1 partition so the topic shows one emission order per conflict and a
      reader sees records in the order they were produced. Kept 30 days: alerts can be
      rebuilt by replay. ``compact,delete`` would be the Kafka choice, but Tansu accepts
      ``compact`` and never compacts, so we do not pretend.
    - ``dead-letter``: 1 partition, kept forever: bad input is never silently dropped.
    - ``leases``: as many partitions as ``spend``, never written: the worker group's
      assignment of it says which worker publishes alerts for which clients.
    - ``snapshots``: 1 partition, kept 7 days; restores are from the newest ones.
    - ``notifications``: the alert delivery's notification log, 1 partition, kept forever,
      ``compact`` for real Kafka; Tansu never compacts, so readers load it whole
      (``streams.agents.notification_log``).
    """
    names = TopicNames(prefix)
    month = {"retention.ms": str(30 * 24 * 3600 * 1000)}
    week = {"retention.ms": str(7 * 24 * 3600 * 1000)}
    r = replication
    return [
        TopicSpec(names.ownership, partitions, r),
        TopicSpec(names.contracts, partitions, r),
        TopicSpec(names.spend, partitions, r),
        TopicSpec(names.reference, 1, r),
        TopicSpec(names.alerts, 1, r, config=month),
        TopicSpec(names.dead_letter, 1, r),
        TopicSpec(names.leases, partitions, r),
        TopicSpec(names.snapshots, 1, r, config=week),
        TopicSpec(names.notifications, 1, r, config={"cleanup.policy": "compact"}),
    ]


async def ensure_topics(
    bootstrap: str, specs: Iterable[TopicSpec], client: Mapping[str, Any] | None = None
) -> tuple[list[str], list[str]]:
    """Create the missing topics; return ``(created, existing)`` names in ``specs`` order.

    Idempotent and safe against a concurrent creator (TopicAlreadyExists counts as
    existing). Raises ``TopicMismatchError`` when an existing topic has another partition
    count, since keyed ordering would silently differ. ``client``: extra admin-client
    options, e.g. ``streams.kafka.clients.client_options`` for a secured cluster.
    """
    wanted = {s.name: s for s in specs}
    admin = make_admin(bootstrap, client)
    await admin.start()
    try:
        present = set(await admin.list_topics()) & wanted.keys()
        missing = [s for name, s in wanted.items() if name not in present]
        created: set[str] = set()
        if missing:
            response = await admin.create_topics([_new_topic(s) for s in missing])
            for name, code, message in response.topic_errors:
                if code == 0:
                    created.add(name)
                elif code != _TOPIC_ALREADY_EXISTS:
                    raise RuntimeError(f"creating topic {name!r} failed: {code} {message}")
        existing = [n for n in wanted if n not in created]
        if existing:
            _check_partitions(await admin.describe_topics(existing), wanted)
    finally:
        await admin.close()
    return [n for n in wanted if n in created], existing


def _new_topic(spec: TopicSpec) -> NewTopic:
    return NewTopic(spec.name, spec.partitions, spec.replication, topic_configs=dict(spec.config))


def _check_partitions(described: list[dict[str, Any]], wanted: Mapping[str, TopicSpec]) -> None:
    for topic in described:
        spec = wanted[topic["topic"]]
        if len(topic["partitions"]) != spec.partitions:
            raise TopicMismatchError(
                f"topic {spec.name!r} has {len(topic['partitions'])} partitions, "
                f"declared {spec.partitions}; delete it or change the declaration"
            )
