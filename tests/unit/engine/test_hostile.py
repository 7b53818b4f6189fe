"""Hostile and inconsistent ownership feeds (SPEC v2 §2): bounded work, the reference's
answers, and the over-allocated state made visible."""

from __future__ import annotations

import sys
from pathlib import Path

import orjson

from streams.bench.generate import mesh_and_chain, overallocated_world
from streams.engine import Engine, EngineConfig
from streams.query import owners

try:
    from tests.reference import Reference
except ModuleNotFoundError:  # plain `pytest` without the repository root on sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
    from tests.reference import Reference

SEED = Path(__file__).resolve().parents[2] / "fixtures" / "scale-ai-2025.ndjson"


def _stake(n: int, owner: str, asset: str, percent: float, day: int = 1) -> bytes:
    return orjson.dumps(
        {"specversion": "1.0", "id": f"h-{n}", "source": "/t", "type": "ownership.stake",
         "time": f"2024-01-{day:02}T00:00:00Z",
         "data": {"owner": owner, "asset": asset, "percent": percent}}
    )  # fmt: skip


def _rivals(a: str, b: str) -> bytes:
    return orjson.dumps(
        {"specversion": "1.0", "id": f"r-{a}-{b}", "source": "/t", "type": "rivalry.declared",
         "time": "2024-01-01T00:00:00Z", "data": {"a": a, "b": b}}
    )  # fmt: skip


def test_a_chain_of_100000_holdings_counts_16_and_never_recurses() -> None:
    """A 100,000-holding chain at 100 % — deeper than any recursion limit — is applied; the
    rival's exposure reaches exactly the 16 entities 16 holdings or fewer away."""
    engine = Engine()
    assert engine.process(_rivals("meta", "google")).applied
    links = 100_000
    assert sys.getrecursionlimit() < links
    for i in range(links):
        owner = "meta" if i == 0 else f"c-{i}"
        assert engine.process(_stake(i, owner, f"c-{i + 1}", 100)).applied
    exposure = engine.exposure_of("meta")
    assert sorted(exposure.paths, key=lambda e: int(e[2:])) == [f"c-{i}" for i in range(1, 17)]
    assert [len(p) - 1 for _, p in exposure.paths["c-16"]] == [16]
    assert "c-100000" in exposure.controlled  # control is not a path: 51 % at every link
    into = engine.graph.paths_into("c-50000")
    assert sorted(len(p) - 1 for ps in into.values() for _, p in ps) == list(range(1, 17))


def test_the_path_limit_is_a_rule_setting() -> None:
    engine = Engine(EngineConfig(max_path_holdings=2))
    engine.process(_rivals("meta", "google"))
    for i, (a, b) in enumerate((("meta", "x"), ("x", "y"), ("y", "v"))):
        engine.process(_stake(i, a, b, 100))
    assert sorted(engine.exposure_of("meta").paths) == ["x", "y"]


def test_over_allocation_is_reported_when_it_starts_and_ends() -> None:
    """Each change of an asset's over-allocated state is in the event's Outcome, with the
    totals claimed; the API's owners of the asset show them and the counted values."""
    engine = Engine()
    assert engine.process(_stake(1, "a", "v", 70)).allocations == ()
    entered = engine.process(_stake(2, "b", "v", 60)).allocations
    assert [(x.asset, x.over, x.claimed) for x in entered] == [("v", True, 130.0)]
    assert engine.graph.overallocated == {"v"}
    assert engine.process(_stake(3, "b", "v", 65, day=2)).allocations == ()  # still over
    answer = owners(engine, "v")
    assert answer["allocation"] == {"claimed": 135.0, "claimed_held": 135.0, "overallocated": True}
    direct = {row["owner"]: row["direct"] for row in answer["owners"]}
    assert direct["a"]["percent"] == 70 and direct["a"]["counted"] == round(70 * 100 / 135, 6)
    left = engine.process(_stake(4, "b", "v", 30, day=3)).allocations
    assert [(x.asset, x.over, x.claimed) for x in left] == [("v", False, 100.0)]
    assert engine.graph.overallocated == set()


def _small_mesh_and_chain() -> list[bytes]:
    return [*mesh_and_chain(mesh=8, chain=40), *SEED.read_bytes().splitlines()]


def test_a_small_mesh_and_chain_matches_the_reference_line_by_line() -> None:
    engine, reference = Engine(), Reference()
    for index, raw in enumerate(_small_mesh_and_chain()):
        expected = reference.feed(raw)
        outcome = engine.process(raw)
        actual = (
            [r.to_dict() for r in outcome.records],
            outcome.rejection and outcome.rejection.code,
        )
        assert actual == expected, f"line {index}: {raw[:200]!r}"


def test_the_full_size_hostile_feeds_end_where_the_reference_does() -> None:
    """The mesh-and-chain feed (30 × 90 % mesh, 3,000-holding chain) and a dense
    over-allocated world, each followed by the seed case: the engine's open conflicts and
    severities are those of a from-scratch evaluation at the end."""
    world = list(overallocated_world(events=600))
    for feed in ([*mesh_and_chain()], world):
        lines = [*feed, *SEED.read_bytes().splitlines()]
        engine, reference = Engine(), Reference()
        for raw in lines:
            outcome = engine.process(raw)
            code = reference.load(raw)
            assert (outcome.rejection and outcome.rejection.code) == code
        assert {k: c.severity for k, c in engine.open.items()} == reference.conflicts_now()
