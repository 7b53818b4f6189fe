"""Which snapshot a worker restores when it takes leases over."""

from __future__ import annotations

from streams.agents.snapshots import Marker, choose_marker


def marker(
    offset: int, leases, progress: int, rules: str = "r1", chunks=(0,), broker: str = ""
) -> Marker:
    return Marker(
        offset=offset,
        snapshot_id=f"s{offset}",
        worker="w",
        chunks=tuple(chunks),
        positions={("t", 0): progress},
        leases=frozenset(leases),
        created=0.0,
        rules=rules,
        broker=broker,
    )


def test_newest_snapshot_per_lease_then_the_least_advanced() -> None:
    a_old = marker(1, {0, 1}, 10)
    a_new = marker(5, {0, 1}, 50)  # worker A, newest
    b_new = marker(6, {2, 3}, 40)  # worker B, newest, a little behind A
    assert choose_marker([a_old, a_new, b_new], {0, 2}, "r1") is b_new
    assert choose_marker([a_old, a_new, b_new], {1}, "r1") is a_new


def test_a_lease_nobody_published_for_means_replay() -> None:
    assert choose_marker([marker(1, {0}, 10)], {0, 1}, "r1") is None
    assert choose_marker([], {0}, "r1") is None


def test_snapshots_of_other_rules_do_not_count_but_resets_do() -> None:
    other = marker(3, {0}, 30, rules="r0")
    assert choose_marker([other], {0}, "r1") is None
    reset = marker(4, {0, 1}, 0, rules="*", chunks=())
    assert reset.is_reset
    assert choose_marker([other, reset], {0, 1}, "r1") is reset
    newer = marker(7, {0, 1}, 70)
    assert choose_marker([reset, newer], {0}, "r1") is newer  # written after the reset


def test_snapshots_written_to_another_embedded_broker_instance_do_not_count() -> None:
    """A process that missed its embedded broker's restart may write a snapshot into the
    refilled successor; restoring it would skip alerts the new alerts topic never got."""
    stale = marker(3, {0, 1}, 30, broker="embedded:111")
    assert choose_marker([stale], {0}, "r1", broker="embedded:222") is None
    assert choose_marker([stale], {0}, "r1", broker="embedded:111") is stale
    reset = marker(4, {0, 1}, 0, rules="*", chunks=(), broker="embedded:111")
    assert choose_marker([stale, reset], {0}, "r1", broker="embedded:222") is reset
    assert choose_marker([marker(5, {0}, 9)], {0}, "r1") is not None  # a real cluster: ""


def test_marker_json_round_trip() -> None:
    m = marker(9, {3, 1}, 12, broker="embedded:42")
    back = Marker.from_json(9, m.to_json())
    assert back == m
