"""Topic declarations and an idempotent ``ensure_topics`` over aiokafka's admin client.

We create topics ourselves instead of letting producers or faust auto-create them: Tansu
auto-creates an unknown topic with 4 partitions on the first metadata request, and its
DescribeConfigs returns only configs set at creation (``../shared/TANSU.md``), so every
topic is created with explicit partitions and explicit ``retention.ms``/``retention.bytes``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

__all__ = ["TopicMismatchError", "TopicSpec", "default_topics", "ensure_topics"]

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


def default_topics(prefix: str = "stakewatch", partitions: int = 8) -> list[TopicSpec]:
    """The topics Stakewatch reads and writes.

    - ``ownership``, ``contracts``, ``spend``: the event log and source of truth, kept
      forever. ``partitions`` (8) lets producers key by pair / contract id and spread load,
      and leaves room to shard later; the engine's state is global, so one worker reads
      them all, and per-key order is what SPEC's "partition order" guarantees.
    - ``reference`` (rivalries, entity names): 1 partition, kept forever; low volume,
      and one total order makes declare/withdraw sequences unambiguous.
    - ``alerts``: 1 partition so the topic shows the engine's single emission order
      (replays compare record for record). Kept 30 days: alerts can be rebuilt by replay.
      ``compact,delete`` would be the Kafka choice, but Tansu accepts ``compact`` and
      never compacts, so we do not pretend.
    - ``dead-letter``: 1 partition, kept forever: bad input is never silently dropped,
      and a retention limit would drop it later.
    """
    month = {"retention.ms": str(30 * 24 * 3600 * 1000)}
    return [
        TopicSpec(f"{prefix}.ownership", partitions),
        TopicSpec(f"{prefix}.contracts", partitions),
        TopicSpec(f"{prefix}.spend", partitions),
        TopicSpec(f"{prefix}.reference", 1),
        TopicSpec(f"{prefix}.alerts", 1, config=month),
        TopicSpec(f"{prefix}.dead-letter", 1),
    ]


async def ensure_topics(bootstrap: str, specs: Iterable[TopicSpec]) -> tuple[list[str], list[str]]:
    """Create the missing topics; return ``(created, existing)`` names in ``specs`` order.

    Idempotent and safe against a concurrent creator (TopicAlreadyExists counts as
    existing). Raises ``TopicMismatchError`` when an existing topic has another partition
    count, since keyed ordering would silently differ.
    """
    wanted = {s.name: s for s in specs}
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
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
