"""Snapshots are pickled in a forked child while the worker's loop goes on."""

from __future__ import annotations

import asyncio
import pickle

import pytest

from streams.agents.snapshots import made_in_child


async def test_the_child_pickles_the_state_as_of_the_fork_while_the_parent_moves_on() -> None:
    state = {i: f"v{i}" for i in range(100_000)}
    job = asyncio.ensure_future(made_in_child(lambda: pickle.dumps(state)))
    await asyncio.sleep(0)  # the fork happens when the job first runs
    state.clear()  # the loop goes on changing its state meanwhile
    state["after"] = "the fork"
    blob = await job
    restored = pickle.loads(blob)
    assert len(restored) == 100_000 and restored[99_999] == "v99999"
    assert "after" not in restored


async def test_a_child_that_fails_is_an_error_not_an_empty_snapshot() -> None:
    with pytest.raises(RuntimeError, match="snapshot child"):
        await made_in_child(lambda: 1 // 0)  # type: ignore[arg-type,return-value]


async def test_the_child_does_not_hold_locks_on_descriptors_it_inherited(tmp_path) -> None:
    """A thread appending to the archive holds its flock when the fork happens; a child
    that kept the inherited descriptor would hold the lock until it exits (and it waits
    for its reader): the chaos campaign's deadlock."""
    import fcntl
    import os
    import time

    path = tmp_path / "archive"
    path.write_bytes(b"")
    held = os.open(path, os.O_RDWR)
    fcntl.flock(held, fcntl.LOCK_EX)

    def slow() -> bytes:
        time.sleep(1.0)
        return b"state"

    job = asyncio.ensure_future(made_in_child(slow))
    await asyncio.sleep(0.2)  # forked, the child is busy
    os.close(held)  # the appender is done: the lock must be free now
    other = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises if the child holds it
    finally:
        os.close(other)
    assert await job == b"state"
