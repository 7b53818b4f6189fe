"""Which worker publishes alerts for which clients: a consumer group over an empty topic.

Every worker holds the whole state (exposure crosses all clients: one stake change moves
every client downstream), so the group does not split the reading. It splits the
*publishing*: client ``c`` belongs to lease ``murmur2(c) % N`` — the partition its spend
records land on — and only the worker holding that lease publishes ``c``'s alert records
and dead letters. Kafka's group protocol gives each lease one holder and moves leases off
a dead worker once its session expires.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from aiokafka import ConsumerRebalanceListener
from aiokafka.partitioner import murmur2

from streams.agents.membership import MemberSlot, member_id_of, start_as_member
from streams.kafka.clients import make_consumer

__all__ = ["Held", "LeaseKeeper", "lease_of"]


@lru_cache(maxsize=1 << 16)
def lease_of(client: str, leases: int) -> int:
    """The lease (and spend partition, for the default partitioner) of a client id."""
    return (murmur2(client.encode()) & 0x7FFFFFFF) % leases


@dataclass(frozen=True, slots=True)
class Held:
    """The leases a worker holds out of ``count``: whose records it publishes."""

    leases: frozenset[int] = frozenset()
    count: int = 1

    def owns(self, client: str) -> bool:
        """Whether this worker publishes the client's alert records."""
        return lease_of(client, self.count) in self.leases

    def owns_partition(self, partition: int) -> bool:
        """Whether this worker dead-letters the bad records of an input partition."""
        return partition % self.count in self.leases


Callback = Callable[[frozenset[int]], Awaitable[None]]


class _Listener(ConsumerRebalanceListener):
    def __init__(
        self, on_revoked: Callback, on_assigned: Callback, joined: Callable[[], None]
    ) -> None:
        self._on_revoked = on_revoked
        self._on_assigned = on_assigned
        self._joined = joined

    async def on_partitions_revoked(self, revoked) -> None:
        await self._on_revoked(frozenset(tp.partition for tp in revoked))

    async def on_partitions_assigned(self, assigned) -> None:
        self._joined()
        await self._on_assigned(frozenset(tp.partition for tp in assigned))


class LeaseKeeper:
    """Joins the group on the leases topic and reports assignment changes.

    The callbacks run inside the rebalance, so a worker that loses leases flushes and
    snapshots before anyone else gets them. With `member_dir`, a worker restarted after a
    crash rejoins as the member it was (streams/agents/membership.py), so its leases come
    back without waiting for the dead session to expire.
    """

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        group_id: str,
        on_revoked: Callback,
        on_assigned: Callback,
        *,
        session_timeout: float = 6.0,
        heartbeat_interval: float = 1.0,
        client_id: str = "stakewatch",
        client: Mapping[str, Any] | None = None,
        member_dir: Path | None = None,
    ) -> None:
        self._group_id = group_id
        self._member_dir = member_dir
        self._slot: MemberSlot | None = None
        self._consumer = make_consumer(
            bootstrap,
            client,
            group_id=group_id,
            client_id=client_id,
            enable_auto_commit=False,
            session_timeout_ms=int(session_timeout * 1000),
            heartbeat_interval_ms=int(heartbeat_interval * 1000),
            rebalance_timeout_ms=int(max(session_timeout, 10) * 1000),
            fetch_max_wait_ms=500,
        )
        self._topic = topic
        self._listener = _Listener(on_revoked, on_assigned, self._joined)
        self._task: asyncio.Task | None = None

    @property
    def member_id(self) -> str:
        return member_id_of(self._consumer)

    def _joined(self) -> None:
        if self._slot is not None:
            self._slot.record(self.member_id)

    async def start(self) -> None:
        self._slot = await start_as_member(self._consumer, self._member_dir, self._group_id)
        self._consumer.subscribe([self._topic], listener=self._listener)
        self._task = asyncio.create_task(self._poll(), name="lease-keeper")

    async def _poll(self) -> None:
        # Nothing is ever written to the topic; polling keeps the member alive and lets
        # the coordinator run rebalances (and our callbacks) as the group changes.
        while True:
            await self._consumer.getmany(timeout_ms=1000)

    async def stop(self) -> None:
        """Leave the group (the revoke callback runs first)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._consumer.stop()
        if self._slot is not None:  # the member left the group: its id is not to be reused
            self._slot.release(clear=True)
