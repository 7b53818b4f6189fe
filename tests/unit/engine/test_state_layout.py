"""The compact state layout (issue #7) keeps every view the engine and its readers had.

The ownership graph keeps one id/holding index each way instead of dicts of percents per
node; `out_eff`, `out_held` and `in_eff` are built from it and must equal the rows the
holdings imply. Pairs, vendors' clients and applied event ids have compact forms too.
"""

from __future__ import annotations

import pickle
import random

import orjson
import pytest

from streams.engine import Engine, EngineConfig
from streams.engine.engine import SNAPSHOT_VERSION
from streams.engine.ownership import OwnershipGraph
from streams.engine.relationships import Contract, Relationships


def _rows(graph: OwnershipGraph, held: bool, inbound: bool) -> dict[str, dict[str, float]]:
    """The rows the holdings imply, the way the graph kept them before."""
    rows: dict[str, dict[str, float]] = {}
    for (owner, asset), h in graph.holdings.items():
        pct = h.held if held else h.effective
        if pct is not None and pct > 0:
            a, b = (asset, owner) if inbound else (owner, asset)
            rows.setdefault(a, {})[b] = pct
    return rows


def _check_views(graph: OwnershipGraph) -> None:
    for view, held, inbound in (
        (graph.out_eff, False, False),
        (graph.out_held, True, False),
        (graph.in_eff, False, True),
    ):
        expected = _rows(graph, held, inbound)
        assert dict(view) == expected
        assert len(view) == len(expected)
        for node in ("a", "x0", "x5", "v", "nobody"):
            assert (node in view) == (node in expected)
            assert view.get(node, {}) == expected.get(node, {})


def test_graph_views_equal_the_rows_the_holdings_imply():
    """Random announcements, closings and cancellations, with an asset held by many (the
    index's dict form) and owners coming and going (back to a tuple, a single id)."""
    rng = random.Random(5)
    graph = OwnershipGraph()
    names = ["a", "v", *(f"x{i}" for i in range(14))]
    for t in range(4_000):
        owner, asset = rng.sample(names, 2)
        if rng.random() < 0.3:
            asset = "v"  # one popular asset
            owner = owner if owner != "v" else "a"
        status = rng.choice(("closed", "announced", "cancelled"))
        percent = rng.choice((0.0, 0.5, 10.0, 30.0, 51.0))
        graph.apply(owner, asset, percent, status, t)
        if t % 50 == 0:
            _check_views(graph)
    _check_views(graph)
    assert graph.pending_count == sum(h.pending is not None for h in graph.holdings.values())


def _stake(n: int, owner: str, asset: str, pct: float, status: str = "closed") -> bytes:
    return orjson.dumps(
        {
            "specversion": "1.0",
            "id": f"s-{n}",
            "source": "/t",
            "type": "ownership.stake",
            "time": f"2024-01-01T{n // 3600:02}:{n // 60 % 60:02}:{n % 60:02}Z",
            "data": {"owner": owner, "asset": asset, "percent": pct, "status": status},
        }
    )


# A rule set that reads `pending` (and says what the defaults say: the extra clause is
# implied by `controlled`), so that exposures keep the held graph's paths.
READS_PENDING = EngineConfig.from_mapping(
    {"severity": {"critical": ["controlled", "stake>=25 & sensitive", "pending & controlled"]}}
)


@pytest.mark.parametrize("config", [READS_PENDING, EngineConfig()], ids=["kept", "on-demand"])
def test_incremental_exposures_equal_fresh_ones_with_announcements(config):
    """`update` follows the held graph through the shared index as the old graphs did
    where a rule reads `pending`; where none does, the held stakes the engine computes on
    demand equal a fresh exposure's."""
    rng = random.Random(11)
    engine = Engine(config)
    assert engine._track_held == (config is READS_PENDING)
    engine.process(
        orjson.dumps(
            {
                "specversion": "1.0",
                "id": "r",
                "source": "/t",
                "type": "rivalry.declared",
                "time": "2024-01-01T00:00:00Z",
                "data": {"a": "lab", "b": "other"},
            }
        )
    )
    engine._exposure("lab")
    engine._exposure("other")
    names = ["lab", "other", "f0", "f1", "f2", "v0", "v1"]  # small: simple paths multiply
    for n in range(1, 1_200):
        owner, asset = rng.sample(names, 2)
        status = rng.choice(("closed", "closed", "announced", "cancelled"))
        engine.process(_stake(n, owner, asset, rng.choice((0, 5, 20, 40, 60)), status))
        for root, cached in engine._exposures.items():
            fresh = engine.graph.exposure(root)
            assert cached.stakes == pytest.approx(fresh.stakes, abs=1e-9)
            assert cached.held_tracked == engine._track_held
            shown = engine.exposure_of(root) if not cached.held_tracked else cached
            held = fresh.held_stakes if fresh.held_stakes is not None else fresh.stakes
            assert {k: v for k, v in held.items()} == pytest.approx(
                shown.held_stakes if shown.held_stakes is not None else shown.stakes,
                abs=1e-9,
            )
            assert cached.controlled == fresh.controlled


def _contract(cid: str, client: str, vendor: str, classes=("user_data",)) -> Contract:
    return Contract(cid, client, vendor, "compute", classes, 1.0, None, f"ev-{cid}")


def test_pairs_vendors_and_data_classes_are_compact_and_read_as_before():
    rel = Relationships()
    rel.sign(_contract("c1", "a", "v"))
    pair = rel.pairs[("a", "v")]
    assert pair.contracts == ("c1",) and pair.times is None and pair.amounts is None
    rel.sign(_contract("c2", "a", "v"))
    assert pair.contracts == ("c1", "c2")
    assert rel.clients_of("v") == ("a",)
    for i in range(10):  # one client, a few, then a set
        rel.sign(_contract(f"d{i}", f"client-{i}", "v"))
    assert set(rel.clients_of("v")) == {"a", *(f"client-{i}" for i in range(10))}
    assert rel.clients_of("nobody") == ()
    assert rel.contracts["c1"].data_classes is rel.contracts["d3"].data_classes
    assert rel.contracts["c1"].events == ("ev-c1",)
    assert rel.spend_365d("a", "v", 10) == 0.0 and rel.activity("b", "v", 10) is None
    assert rel.add_spend("b", "v", 10, 5.0, 10) is True
    assert rel.spend_365d("b", "v", 10) == 5.0 and rel.activity("b", "v", 10) == []


def test_ids_are_interned_so_keys_share_one_string():
    engine = Engine()
    a, b = "".join(["e-", "1"]), "".join(["e-", "2"])  # distinct objects, equal text
    engine.process(_stake(1, a, b, 20))
    engine.process(_stake(2, "".join(["e-", "2"]), "".join(["e-", "1"]), 20))
    keys = list(engine.graph.holdings)
    assert keys[0][0] is keys[1][1] and keys[0][1] is keys[1][0]


def test_applied_ids_are_exact_per_source():
    engine = Engine()
    assert engine.process(_stake(1, "x", "y", 20)).applied
    assert engine.process(_stake(1, "x", "y", 30)).rejection.code == "duplicate"
    other = _stake(1, "x", "y", 30).replace(b'"/t"', b'"/u"')
    assert engine.process(other).applied  # same id, another source: another event
    assert len(engine.seen) == 2 and ("/u", "s-1") in engine.seen
    assert ("/v", "s-1") not in engine.seen


def test_snapshots_round_trip_and_other_layouts_are_refused():
    engine = Engine()
    for n in range(1, 40):
        engine.process(_stake(n, f"o{n % 5}", f"a{n % 7}", 10 + n % 30))
    restored = Engine.restore(engine.snapshot())
    assert restored.seen == engine.seen and restored.graph.holdings == engine.graph.holdings
    assert dict(restored.graph.out_eff) == dict(engine.graph.out_eff)
    _, state = pickle.loads(engine.snapshot())
    with pytest.raises(ValueError, match="version"):
        Engine.restore(pickle.dumps((SNAPSHOT_VERSION - 1, state)))
    with pytest.raises(ValueError, match="cannot be read"):
        Engine.restore(b"not a snapshot")


def test_alert_records_carry_the_figures_fields_in_order() -> None:
    """`Engine._record` builds an AlertRecord positionally from `Figures`: the figures'
    fields must be the record's, in the same order, between `rival` and `event_id`."""
    import dataclasses

    from streams.engine import AlertRecord, Figures

    names = [f.name for f in dataclasses.fields(AlertRecord)]
    start = names.index("rival") + 1
    assert tuple(names[start : start + len(Figures._fields)]) == Figures._fields
    assert names[start + len(Figures._fields)] == "event_id"
