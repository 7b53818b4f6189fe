"""Through the real broker: a worker restarted after kill -9 rejoins its group as the member
it was (its leases back without waiting for the dead session), and never as a live one."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streams.agents.leases import LeaseKeeper
from streams.kafka.broker import EmbeddedBroker
from tests.integration.workers import wait_for

ROOT = Path(__file__).resolve().parents[2]
LEASES = 8

HOLDER = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from streams.agents.leases import LeaseKeeper

    async def main(bootstrap, topic, group, members):
        async def revoked(parts):
            pass

        async def assigned(parts):
            print("assigned", keeper.member_id, len(parts), flush=True)

        keeper = LeaseKeeper(bootstrap, topic, group, revoked, assigned,
                             session_timeout=6, heartbeat_interval=1, member_dir=Path(members))
        await keeper.start()
        await asyncio.Event().wait()

    asyncio.run(main(*sys.argv[1:]))
    """
)


async def _leases_topic(bootstrap: str) -> str:
    topic = f"test.leases.{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, LEASES, 1)])
    finally:
        await admin.close()
    return topic


def _holder(bootstrap: str, topic: str, group: str, members: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", HOLDER, bootstrap, topic, group, str(members)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )


class _Keeper:
    def __init__(self, bootstrap: str, topic: str, group: str, members: Path) -> None:
        self.held: frozenset[int] = frozenset()
        self.keeper = LeaseKeeper(
            bootstrap,
            topic,
            group,
            self._revoked,
            self._assigned,
            session_timeout=6,
            heartbeat_interval=1,
            member_dir=members,
        )

    async def _revoked(self, parts: frozenset[int]) -> None:
        self.held = frozenset()

    async def _assigned(self, parts: frozenset[int]) -> None:
        self.held = parts


async def test_restart_after_kill_9_rejoins_as_the_dead_member(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    topic = await _leases_topic(broker.bootstrap)
    group = f"test-members-{uuid.uuid4().hex[:8]}"
    members = tmp_path / "members"
    first = _holder(broker.bootstrap, topic, group, members)
    try:
        line = await asyncio.wait_for(asyncio.to_thread(first.stdout.readline), 60)
        word, dead_id, count = line.split()
        assert (word, int(count)) == ("assigned", LEASES)
    finally:
        first.kill()
        first.wait()

    successor = _Keeper(broker.bootstrap, topic, group, members)
    await successor.keeper.start()
    try:
        await wait_for(lambda: len(successor.held) == LEASES, 60, "every lease back")
        assert successor.keeper.member_id == dead_id

        # A second process beside the live successor: it must not be offered that id.
        second = _holder(broker.bootstrap, topic, group, members)
        try:
            line = await asyncio.wait_for(asyncio.to_thread(second.stdout.readline), 60)
            word, other_id, count = line.split()
            assert word == "assigned" and other_id != dead_id
            await wait_for(
                lambda: len(successor.held) + int(count) == LEASES and successor.held,
                60,
                "the leases split between the two live members",
            )
        finally:
            second.kill()
            second.wait()
    finally:
        await successor.keeper.stop()
    assert sorted(p.name for p in members.iterdir()) == [f"{group}.0.member", f"{group}.1.member"]
    assert (members / f"{group}.0.member").read_text() == ""  # left the group: cleared
