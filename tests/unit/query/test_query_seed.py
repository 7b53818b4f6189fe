"""The query functions on the seed scenario: the answers a risk lead gets about Scale AI."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.query import (
    BadHypothesis,
    NotFound,
    alternatives,
    client_exposure,
    explain,
    holdings,
    load_lines,
    open_conflicts,
    owners,
    what_if,
)

SEED = Path(__file__).resolve().parents[2] / "fixtures" / "scale-ai-2025.ndjson"
LINES = SEED.read_bytes().splitlines()


@pytest.fixture(scope="module")
def announced():
    """The state right after seed-0074: Meta announced 49 % of Scale AI."""
    return load_lines(LINES[:74])


@pytest.fixture(scope="module")
def settled():
    """The state after the whole file: Google left, Meta's 49 % closed."""
    return load_lines(LINES)


def stake_event(percent: float, status: str = "closed") -> dict:
    return {
        "type": "ownership.stake",
        "data": {"owner": "meta", "asset": "scale-ai", "percent": percent, "status": status},
    }


def test_explain_names_the_path_the_matched_rule_and_the_events(announced):
    """google|scale-ai|meta: meta→scale-ai 49 % pending, critical by `stake>=25 & sensitive`."""
    x = explain(announced.engine, announced.provenance, "google", "scale-ai", "meta")
    assert x["conflict"] and x["open"] and x["severity"] == "critical"
    assert x["since"] == {"event_id": "seed-0074", "time": "2025-06-12T14:00:00Z"}
    assert all(c["holds"] for c in x["conditions"])
    [path] = x["stake"]["paths"]
    assert path["path"] == ["meta", "scale-ai"] and path["stake"] == 49.0 and path["pending"]
    [holding] = path["holdings"]
    assert holding["status"] == "announced" and holding["held"] is None
    assert holding["evidence"] == {
        "id": "seed-0074",
        "source": "/feeds/reuters",
        "time": "2025-06-12T14:00:00Z",
        "type": "ownership.stake",
    }
    assert x["rules"]["matched"] == {"severity": "critical", "clause": "stake>=25 & sensitive"}
    assert x["rules"]["facts"] == {
        "stake": 49.0,
        "controlled": False,
        "sensitive": True,
        "pending": True,
    }
    critical = x["rules"]["rules"][0]
    assert [(c["clause"], c["holds"]) for c in critical["clauses"]] == [
        ("controlled", False),
        ("stake>=25 & sensitive", True),
    ]
    rivalry, _, relationship, stake = x["conditions"]
    assert [e["id"] for e in rivalry["evidence"]] == ["seed-0011"]
    assert [e["id"] for e in relationship["evidence"]] == ["seed-0021"]
    assert [e["id"] for e in stake["evidence"]] == ["seed-0074"]
    rel = x["relationship"]
    assert rel["spend_365d"] == 150_000_000 and rel["spend_events"] == 12
    sensitive = ["confidential_data", "internal_documents", "prototypes"]
    assert rel["sensitive_data_classes"] == sensitive
    assert x["names"]["meta"] == "Meta Platforms"


def test_explain_after_the_termination_says_which_condition_fails(settled):
    """After Google's termination only the relationship fails; the held stake cites seed-0080."""
    x = explain(settled.engine, settled.provenance, "google", "scale-ai", "meta")
    assert not x["conflict"] and not x["open"] and x["severity"] is None
    failing = [c["condition"] for c in x["conditions"] if not c["holds"]]
    assert failing == ["the client–vendor relationship is active"]
    [contract] = x["relationship"]["contracts"]
    assert contract["terminated"] and [e["id"] for e in contract["events"]] == [
        "seed-0021",
        "seed-0075",
    ]
    holding = x["stake"]["paths"][0]["holdings"][0]
    assert holding["status"] == "closed" and holding["evidence"]["id"] == "seed-0080"
    assert not x["rules"]["applies"]


def test_explain_of_unknown_entities_is_not_found(settled):
    with pytest.raises(NotFound, match="nobody"):
        explain(settled.engine, settled.provenance, "google", "nobody", "meta")


def test_what_if_meta_takes_60_percent_makes_microsoft_critical_and_touches_nothing(settled):
    """A closed 60 % gives Meta control: Microsoft's high conflict turns critical."""
    engine = settled.engine
    before = engine.snapshot()
    result = what_if(engine, [stake_event(60)])
    assert engine.snapshot() == before
    assert result["applied"] == 1 and not result["rejected"]
    assert not result["opened"] and not result["closed"]
    changed = {c["dedup_key"]: c for c in result["changed"]}
    assert set(changed) == {"microsoft|scale-ai|meta", "openai|scale-ai|meta"}
    ms = changed["microsoft|scale-ai|meta"]
    assert (ms["before"]["severity"], ms["after"]["severity"]) == ("high", "critical")
    assert ms["after"]["controlled"] and ms["after"]["stake"] == 60.0
    assert [(r["dedup_key"], r["severity"]) for r in result["records"]] == [
        ("microsoft|scale-ai|meta", "critical")
    ]
    assert result["records"][0]["event_id"] == "what-if-0"
    assert result["watermark"]["after"] == result["watermark"]["before"] == "2025-06-20T08:00:00Z"


def test_what_if_meta_stopped_at_19_percent_lowers_every_severity(announced):
    """At 19 % the stake is under 25: Google's conflict stays open but only as high."""
    result = what_if(announced.engine, [stake_event(19, "announced")])
    moves = {
        c["dedup_key"]: (c["before"]["severity"], c["after"]["severity"]) for c in result["changed"]
    }
    assert moves == {
        "google|scale-ai|meta": ("critical", "high"),
        "microsoft|scale-ai|meta": ("high", "warning"),
        "openai|scale-ai|meta": ("critical", "high"),
        "xai|scale-ai|meta": ("critical", "high"),
    }


def test_what_if_google_terminates_closes_its_conflict(announced):
    result = what_if(
        announced.engine,
        [{"type": "contract.terminated", "data": {"contract_id": "c-google-scale-2024"}}],
    )
    assert [c["dedup_key"] for c in result["closed"]] == ["google|scale-ai|meta"]
    closed = result["closed"][0]
    assert closed["before"]["open"] and not closed["after"]["open"]
    assert [r["status"] for r in result["records"]] == ["resolved"]
    assert "google|scale-ai|meta" in announced.engine.open


def test_what_if_reports_state_rejections_and_refuses_undecodable_events(announced):
    """A contract the state never saw is a rejection in the answer; a malformed event is an
    error naming its index."""
    result = what_if(
        announced.engine,
        [{"type": "contract.terminated", "data": {"contract_id": "c-nope"}}],
    )
    assert result["applied"] == 0
    assert result["rejected"][0]["reason"].startswith("unknown_contract")
    with pytest.raises(BadHypothesis, match=r"events\[1\]: schema"):
        what_if(announced.engine, [stake_event(20), {"type": "ownership.stake", "data": {}}])
    with pytest.raises(BadHypothesis, match=r"events\[0\]: expected a JSON object"):
        what_if(announced.engine, ["meta takes 60 %"])


def test_alternatives_for_google_in_data_labeling_are_the_neutral_vendors(settled):
    """Labelbox, Mercor and Turing have no rival of Google behind them; Scale AI has Meta."""
    result = alternatives(settled.engine, "google", "data-labeling")
    assert {v["vendor"] for v in result["alternatives"]} == {"labelbox", "mercor", "turing"}
    labelbox = next(v for v in result["alternatives"] if v["vendor"] == "labelbox")
    assert labelbox["clients"] == 2 and labelbox["already_used"]
    [scale] = result["excluded"]
    assert scale["vendor"] == "scale-ai"
    assert scale["rival_stakes"] == [
        {"rival": "meta", "stake": 49.0, "controlled": False, "at_or_above_threshold": True}
    ]
    with pytest.raises(NotFound, match="category"):
        alternatives(settled.engine, "google", "catering")


def test_open_conflicts_are_most_severe_first_with_the_alert_figures(announced):
    """With nothing changed since the alerts, the listed figures are the alert records'."""
    result = open_conflicts(announced.engine, announced.latest)
    keys = [c["dedup_key"] for c in result["conflicts"]]
    assert keys == [
        "google|scale-ai|meta",
        "openai|scale-ai|meta",
        "xai|scale-ai|meta",
        "microsoft|scale-ai|meta",
    ]
    for item in result["conflicts"]:
        record = announced.latest[item["dedup_key"]].to_dict()
        assert {k: item[k] for k in record} == record
    only = open_conflicts(announced.engine, client="microsoft", severity="high")
    assert [c["dedup_key"] for c in only["conflicts"]] == ["microsoft|scale-ai|meta"]
    assert open_conflicts(announced.engine, severity="warning")["total"] == 0
    assert open_conflicts(announced.engine, limit=1)["total"] == 4
    with pytest.raises(NotFound):
        open_conflicts(announced.engine, rival="nobody")


def test_exposure_lists_each_vendor_with_each_rivals_reach(announced):
    result = client_exposure(announced.engine, "google")
    [scale] = [v for v in result["vendors"] if v["vendor"] == "scale-ai"]
    assert scale["active"] and scale["spend_365d"] == 150_000_000
    assert scale["categories"] == ["data-labeling"]
    [meta] = scale["rivals"]
    assert meta["rival"] == "meta" and meta["stake"] == 49.0 and meta["held_stake"] == 0.0
    assert meta["conflict_open"] and meta["severity"] == "critical" and meta["pending"]


def test_owners_and_holdings_of_scale_ai_and_meta(settled):
    [owner] = owners(settled.engine, "scale-ai")["owners"]
    assert owner["owner"] == "meta" and owner["stake"] == 49.0 and not owner["controls"]
    assert owner["direct"] == {"percent": 49.0, "counted": 49.0, "held": 49.0, "pending": None}
    [held] = holdings(settled.engine, "meta")["holdings"]
    assert held["asset"] == "scale-ai" and held["paths"][0]["path"] == ["meta", "scale-ai"]
    with pytest.raises(NotFound):
        owners(settled.engine, "nobody")
