"""Provenance: the evidence an explanation cites, kept exactly as long as promised."""

from __future__ import annotations

import pickle

from streams.engine.provenance import Provenance, SpendTrail


def spend(n: int, client: str = "google", vendor: str = "scale-ai") -> tuple:
    data = (client, vendor, 1.0, None)
    return ("spend.recorded", "erp", f"s-{n}", 1_700_000_000_000_000 + n, data)


def test_a_pair_cites_its_five_latest_spends_newest_last_and_counts_them_all() -> None:
    p = Provenance()
    for n in range(23):
        p.observe_flat(spend(n))
    p.observe_flat(spend(99, vendor="other"))
    recent, count = p.recent_spend("google", "scale-ai")
    assert count == 23
    assert [e.id for e in recent] == [f"s-{n}" for n in range(18, 23)]
    assert {e.type for e in recent} == {"spend.recorded"} and recent[-1].source == "erp"
    assert p.recent_spend("google", "other")[1] == 1
    assert p.recent_spend("nobody", "scale-ai") == ([], 0)


def test_fewer_spends_than_kept_are_all_cited() -> None:
    p = Provenance()
    for n in range(3):
        p.observe_flat(spend(n))
    assert [e.id for e in p.recent_spend("google", "scale-ai")[0]] == ["s-0", "s-1", "s-2"]


def test_a_trail_survives_a_snapshot_and_keeps_trimming_after_it() -> None:
    p = Provenance()
    for n in range(12):
        p.observe_flat(spend(n))
    restored = pickle.loads(pickle.dumps(p))
    assert isinstance(restored.spend[("google", "scale-ai")], SpendTrail)
    for n in range(12, 20):
        restored.observe_flat(spend(n))
    recent, count = restored.recent_spend("google", "scale-ai")
    assert count == 20 and [e.id for e in recent] == [f"s-{n}" for n in range(15, 20)]
    assert len(restored.spend[("google", "scale-ai")].recent) <= 10  # trimmed, not growing
