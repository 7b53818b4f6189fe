"""A restarted worker rejoins its consumer group as the member it was.

After a ``kill -9`` the dead member keeps its place in the group until its session expires
(6 s by default), and the coordinator holds a rebalance until every known member has
rejoined or expired; a successor joining under a new member id waits for all of it (11 s
of the 13.5 s recovery measured on Tansu). A successor that sends the dead member's id is
that member rejoining: the rebalance completes at once (3.3 s instead of 11.4 s here).

That is only safe when the previous holder of the id is certainly dead, or two live
processes would share one member (and its leases). So ids are kept in slot files under the
data directory, each held with an exclusive ``flock`` for the life of the process: a slot
whose lock can be taken belongs to no live process on this host, and its id is free to
reuse. The first free slot is taken, so several workers on one host each find their own.
A graceful stop leaves the group and clears its slot (that id is gone). An id the
coordinator no longer knows is answered ``UNKNOWN_MEMBER_ID`` and aiokafka joins afresh.
Apache Kafka has static membership (``group.instance.id``) for this; on Tansu a static
member rejoining a group a dynamic member had left looped in JoinGroup, so this is the
mechanism that works on both.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
from pathlib import Path

import structlog

__all__ = ["MemberSlot", "claim_slot", "member_id_of", "reuse_member_id", "start_as_member"]

log = structlog.get_logger(__name__)

_SAFE = re.compile(r"[^A-Za-z0-9._-]")
_MAX_SLOTS = 64


class MemberSlot:
    """One claimed slot: the id a dead predecessor left (or ""), and where to write ours."""

    def __init__(self, path: Path, fd: int, previous: str) -> None:
        self.path = path
        self.previous = previous
        self._fd = fd

    def record(self, member_id: str) -> None:
        """Remember the id the coordinator gave us (after each join)."""
        if self._fd < 0 or not member_id:
            return
        data = member_id.encode()
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, data, 0)

    def release(self, *, clear: bool) -> None:
        """Unlock (``clear``: the id left the group with us; do not offer it again)."""
        if self._fd < 0:
            return
        with contextlib.suppress(OSError):
            if clear:
                os.ftruncate(self._fd, 0)
            os.close(self._fd)
        self._fd = -1


def claim_slot(directory: Path, group_id: str) -> MemberSlot | None:
    """Lock the first slot of `group_id` no live process holds; None when none can be had
    (an unwritable directory only costs the fast rejoin, so it is logged, not fatal)."""
    stem = _SAFE.sub("_", group_id)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for n in range(_MAX_SLOTS):
            path = directory / f"{stem}.{n}.member"
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            previous = os.pread(fd, 512, 0).decode(errors="replace").strip()
            return MemberSlot(path, fd, previous)
    except OSError as exc:
        log.warning("group member slot unavailable", directory=str(directory), error=str(exc))
        return None
    log.warning("group member slots all held", directory=str(directory), slots=_MAX_SLOTS)
    return None


def reuse_member_id(consumer, slot: MemberSlot | None) -> bool:
    """Before the consumer's first join: present the dead predecessor's member id.

    Reaches into aiokafka's coordinator (``_coordinator.member_id``, aiokafka pinned in
    pyproject.toml; a unit test fails if the attribute moves).
    """
    if slot is None or not slot.previous:
        return False
    coordinator = getattr(consumer, "_coordinator", None)
    if coordinator is None or not hasattr(coordinator, "member_id"):
        log.warning("cannot rejoin as the previous member: aiokafka internals changed")
        return False
    coordinator.member_id = slot.previous
    log.info("rejoining as the previous member", member_id=slot.previous, slot=slot.path.name)
    return True


def member_id_of(consumer) -> str:
    coordinator = getattr(consumer, "_coordinator", None)
    return getattr(coordinator, "member_id", "") or ""


async def start_as_member(consumer, member_dir: Path | None, group_id: str) -> MemberSlot | None:
    """Start `consumer` (subscribe it afterwards: subscribing starts the join) so that its
    first JoinGroup presents the id a crashed predecessor left in `member_dir`, if any;
    the claimed slot, to `record` each join's id in and `release` on a graceful stop."""
    slot = None if member_dir is None else claim_slot(member_dir, group_id)
    await consumer.start()
    reuse_member_id(consumer, slot)
    return slot
