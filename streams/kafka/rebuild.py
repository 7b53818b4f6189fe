"""``stakewatch rebuild``: rebuild all state from the event topics, from the start or a time.

The event topics are the source of truth and are kept forever; a worker's state is only a
cache of them (snapshots on the snapshots topic). A rebuild writes a *reset marker* there:
the next worker to take its leases starts from the empty state at offset 0 instead of a
snapshot, re-applies every event (or, with ``--from``, only those stamped at or after that
time), publishes the transitions again, and then resolves on the alerts topic whatever
the rebuilt state no longer has open. The notification log keeps receivers from being told
the same state twice, so a rebuild pages nobody for what they already know.

Stop every worker first, then rebuild, then start them: a running worker's newer snapshots
(its periodic ones, and the one it writes when it stops) would supersede the marker and the
rebuild would silently not happen. So ``stakewatch rebuild`` asks ``live_workers`` before and
after writing it and refuses while any is alive. A changed rule set (``--config``) needs no
rebuild: snapshots carry a fingerprint of their rules and a worker with other rules ignores
them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from streams.agents.snapshot_key import SnapshotKey, snapshot_key
from streams.agents.snapshots import Marker, SnapshotStore
from streams.kafka.clients import make_admin, make_consumer, make_producer
from streams.kafka.running import running
from streams.kafka.topics import TopicNames, default_topics, ensure_topics
from streams.settings import SettingsError, load_settings

__all__ = ["live_workers", "request_rebuild"]


async def request_rebuild(
    bootstrap: str,
    names: TopicNames,
    since: dt.datetime | None = None,
    client: Mapping[str, Any] | None = None,
    key: SnapshotKey | None = None,
) -> Marker:
    """Write the reset marker covering every lease, signed with the workers' snapshot
    ``key`` (default: the one the settings name); returns it. ``client``: the cluster's
    security options (``Connection.client_options``). Without any key the workers keep no
    snapshots and would never see the marker: a ``SettingsError`` says so."""
    key = key or snapshot_key(load_settings())
    if key is None:
        raise SettingsError(
            "STAKEWATCH_SNAPSHOT_KEY: not set, so the workers on this broker keep no "
            "snapshots and replay the event topics from the start whenever they start; "
            "a rebuild marker would be ignored (set the key the workers use)"
        )
    await ensure_topics(bootstrap, default_topics(names.prefix), client)
    consumer = make_consumer(bootstrap, client)
    await consumer.start()
    try:
        await consumer.topics()
        leases = sorted(consumer.partitions_for_topic(names.leases) or {0})
    finally:
        await consumer.stop()
    since_ms = None
    if since is not None:
        since_ms = int(since.timestamp() * 1000)
    producer = make_producer(bootstrap, client)
    await producer.start()
    try:
        store = SnapshotStore(bootstrap, names.snapshots, "rebuild", client=client, key=key)
        return await store.write(producer, None, {}, leases, rules="*", since=since_ms)
    finally:
        await producer.stop()


async def live_workers(
    bootstrap: str,
    group_id: str,
    *,
    embedded: bool,
    data_dir: Path,
    client: Mapping[str, Any] | None = None,
) -> list[str]:
    """Workers that look alive on this broker, described for a person.

    Workers of this host are listed in ``streams.kafka.running`` (a live pid is proof). On an
    external broker, the members the group coordinator lists count too (workers on other
    hosts); Tansu keeps listing a member that left until the group rebalances, so the
    embedded broker is asked nothing (all its workers are on this host anyway)."""
    found = [
        r.describe()
        for r in running()
        if r.role == "worker"
        and ((r.embedded and r.data_dir == str(data_dir)) if embedded else r.bootstrap == bootstrap)
    ]
    if embedded:
        return found
    admin = make_admin(bootstrap, client)
    try:
        await admin.start()
        for response in await admin.describe_consumer_groups([group_id]):
            for group in response.groups:
                if group[0] == 0:  # error_code
                    members = group[5]
                    found += [f"member {m[0]} of consumer group {group_id}" for m in members]
    finally:
        await admin.close()
    return found
