"""Member slots: a crashed process's group member id is offered to its successor only."""

from __future__ import annotations

import inspect
import subprocess
import sys
import textwrap
from pathlib import Path

from aiokafka import AIOKafkaConsumer

from streams.agents.membership import claim_slot, member_id_of, reuse_member_id


def test_a_fresh_slot_has_no_previous_member(tmp_path: Path) -> None:
    slot = claim_slot(tmp_path / "members", "g")
    assert slot is not None and slot.previous == ""
    assert slot.path.name == "g.0.member"
    slot.release(clear=False)


def test_a_crashed_holders_id_is_offered_to_the_next_claim(tmp_path: Path) -> None:
    first = claim_slot(tmp_path, "g")
    assert first is not None
    first.record("member-a")
    first.release(clear=False)  # what a kill -9 leaves: the id, no lock
    second = claim_slot(tmp_path, "g")
    assert second is not None and second.previous == "member-a"
    second.record("member-b")  # a shorter or longer id replaces the old one whole
    second.release(clear=False)
    assert claim_slot(tmp_path, "g").previous == "member-b"


def test_a_graceful_stop_clears_the_id(tmp_path: Path) -> None:
    first = claim_slot(tmp_path, "g")
    first.record("member-a")
    first.release(clear=True)  # it left the group: the id means nothing now
    assert claim_slot(tmp_path, "g").previous == ""


def test_a_live_holder_keeps_its_slot_and_its_id(tmp_path: Path) -> None:
    """Another process holds slot 0: the claim takes slot 1 and never sees that id."""
    held = tmp_path / "g.0.member"
    held.write_text("member-alive")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import fcntl, os, sys, time
                fd = os.open({str(held)!r}, os.O_RDWR)
                fcntl.flock(fd, fcntl.LOCK_EX)
                print("locked", flush=True)
                time.sleep(60)
                """
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        slot = claim_slot(tmp_path, "g")
        assert slot is not None
        assert slot.path.name == "g.1.member" and slot.previous == ""
        slot.release(clear=False)
    finally:
        holder.kill()
        holder.wait()
    # the holder died (its lock with it): its id is now the one offered
    assert claim_slot(tmp_path, "g").previous == "member-alive"


def test_two_claims_in_one_process_get_different_slots(tmp_path: Path) -> None:
    a, b = claim_slot(tmp_path, "g"), claim_slot(tmp_path, "g")
    assert a.path != b.path
    a.release(clear=False)
    b.release(clear=False)


def test_group_ids_become_safe_file_names(tmp_path: Path) -> None:
    slot = claim_slot(tmp_path, "../team a/workers")
    assert slot.path.parent == tmp_path and slot.path.name == ".._team_a_workers.0.member"
    slot.release(clear=True)


def test_an_unusable_directory_costs_only_the_fast_rejoin(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert claim_slot(blocker / "members", "g") is None
    assert reuse_member_id(object(), None) is False


async def test_the_previous_id_goes_where_aiokafka_sends_it_from(tmp_path: Path) -> None:
    """aiokafka's JoinGroup sends ``_coordinator.member_id``: fail loudly if that moves."""
    from aiokafka.consumer.group_coordinator import CoordinatorGroupRebalance

    assert "self._coordinator.member_id," in inspect.getsource(
        CoordinatorGroupRebalance.perform_group_join
    )
    slot = claim_slot(tmp_path, "g")
    slot.record("member-a")
    slot.release(clear=False)
    consumer = AIOKafkaConsumer(group_id="g", bootstrap_servers="127.0.0.1:1")
    consumer._coordinator = type("Coordinator", (), {"member_id": ""})()  # as start() makes
    assert reuse_member_id(consumer, claim_slot(tmp_path, "g")) is True
    assert member_id_of(consumer) == "member-a"
