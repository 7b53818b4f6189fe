"""`stakewatch import bods`: BODS 0.4 → events, checked by what the engine then computes.

Every case imports statements, applies the events to a real `Engine`, and compares the
effective stake `engine.exposure_of(owner).stake(asset)` with the share the file states.
Inputs: the official BODS 0.4 examples (tests/fixtures/bods/, Open Ownership), the
`bods-v04-fixtures` conformance pack, and cases written here from the standard's
documentation (ranges, updates, ended and closed interests, joint ownership, trusts,
indirect interests whose components are known, unknown, missing or inconsistent).
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
from pathlib import Path

import orjson
import pytest
from bods_fixtures import list_cases, load
from typer.testing import CliRunner

from streams.cli import app
from streams.engine import Engine
from streams.events import Rejection, decode
from streams.imports.bods import BodsResult, convert
from streams.imports.bods_validate import Statement, read_statements
from streams.imports.identity import Directory

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "bods"
EXAMPLES = sorted(FIXTURES.glob("*.json"))


def statements_of(docs: list[dict], name: str = "case") -> list[Statement]:
    return [Statement(doc, name, f"index {i}") for i, doc in enumerate(docs)]


def run(docs: list[dict], directory: Directory | None = None) -> tuple[BodsResult, Engine]:
    result = convert(statements_of(docs), directory or Directory())
    engine = Engine()
    for raw in result.events:
        outcome = engine.process(raw)
        assert outcome.rejection is None, (raw, outcome.rejection)
    return result, engine


def stake(result: BodsResult, engine: Engine, owner_record: str, asset_record: str) -> float:
    owner, asset = result.parties[owner_record], result.parties[asset_record]
    return engine.exposure_of(owner).stake(asset)


def codes(result: BodsResult) -> list[str]:
    return [r["code"] for r in result.report]


# -- statements written from the standard's documentation ------------------------------------

_ids = itertools.count(1)


def _statement(record_id: str, record_type: str, details: dict, **extra) -> dict:
    return {
        "statementId": f"{next(_ids):032d}",
        "declarationSubject": extra.pop("subject", "company"),
        "statementDate": extra.pop("date", "2024-01-15"),
        "publicationDetails": {
            "publicationDate": "2024-01-20",
            "bodsVersion": "0.4",
            "publisher": {"name": "Test register"},
        },
        "recordId": record_id,
        "recordStatus": extra.pop("status", "new"),
        "recordType": record_type,
        "recordDetails": details,
        **extra,
    }


def entity(rid: str, name: str, *ids: tuple[str, str], kind="registeredEntity", **kw) -> dict:
    details = {
        "isComponent": kw.pop("component", False),
        "entityType": {"type": kind},
        "name": name,
    }
    if "subtype" in kw:
        details["entityType"]["subtype"] = kw.pop("subtype")
    if ids:
        details["identifiers"] = [{"scheme": s, "id": i} for s, i in ids]
    return _statement(rid, "entity", details, **kw)


def person(rid: str, name: str, **kw) -> dict:
    details = {
        "isComponent": kw.pop("component", False),
        "personType": "knownPerson",
        "names": [{"type": "legal", "fullName": name}],
    }
    return _statement(rid, "person", details, **kw)


def holding(rid: str, subject: str, party: str, *interests: dict, **kw) -> dict:
    details = {
        "isComponent": kw.pop("component", False),
        "subject": subject,
        "interestedParty": party,
        "interests": list(interests),
    }
    if "components" in kw:
        details["componentRecords"] = kw.pop("components")
    return _statement(rid, "relationship", details, **kw)


def shares(share: dict | None = None, how: str = "direct", kind: str = "shareholding", **kw):
    interest = {"type": kind, "directOrIndirect": how, "beneficialOwnershipOrControl": True}
    if share is not None:
        interest["share"] = share
    return {**interest, **kw}


def unknown_link() -> dict:
    return {"directOrIndirect": "unknown", "beneficialOwnershipOrControl": True}


# -- the official examples --------------------------------------------------------------------


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_official_examples_are_valid_and_every_statement_is_accounted_for(path: Path) -> None:
    found, bad = read_statements(path.name, path.read_bytes())
    assert bad == []
    result, _ = run([s.doc for s in found])
    assert result.invalid == 0
    produced = {part for e in result.events for part in orjson.loads(e)["id"].split("/")}
    reported = {r["statementId"] for r in result.report}
    for s in found:  # every statement became an event, or is in the report, or both
        assert s.doc["statementId"] in produced | reported, s.doc["statementId"]


def _example(name: str) -> list[dict]:
    return json.loads((FIXTURES / name).read_text())


def test_indirect_ownership_comes_through_once() -> None:
    """Person 1 holds 30 % of A through B (B holds 60 % of A, Person 1's share of B unknown):
    the engine must say 30 %, not 30 % + a path through B."""
    result, engine = run(_example("indirect-ownership.json"))
    assert stake(result, engine, "c25d4d612c2c", "ad3f6c2fcc9e") == pytest.approx(30, abs=1e-6)
    assert stake(result, engine, "d4ab89ea169a", "ad3f6c2fcc9e") == 60
    # no direct Person 1 -> A edge: the path runs through B
    person_id = result.parties["c25d4d612c2c"]
    paths = engine.exposure_of(person_id).paths[result.parties["ad3f6c2fcc9e"]]
    assert [len(p) for _, p in paths] == [3]
    assert "via_components" in codes(result)


def test_multiple_indirect_ownership_comes_through_both_components() -> None:
    result, engine = run(_example("mutilple-indirect-ownership-2.json"))
    assert stake(result, engine, "731c7a8e7601", "1e049760d6c7") == pytest.approx(60, abs=1e-6)
    person_id = result.parties["731c7a8e7601"]
    assert len(engine.exposure_of(person_id).paths[result.parties["1e049760d6c7"]]) == 2


def test_bods_package_person_and_company() -> None:
    result, engine = run(_example("bods-package.json"))
    assert stake(result, engine, "10478c6cf6de", "c359f58d2977") == 100
    company = result.parties["c359f58d2977"]
    assert engine.entities[company] == ("Profitech Ltd",)
    assert engine.identifiers[company] == (("GB-COH", "2063384560"),)
    jenny = result.parties["10478c6cf6de"]
    assert engine.entities[jenny] == ("Jennifer Hewitson-Smith", "Jenny Hewitson-Smith")


def test_a_trust_registers_its_parties_and_reports_its_roles() -> None:
    result, engine = run(_example("levent.json"))
    assert sorted(codes(result)) == ["not_shareholding"] * 3
    assert engine.graph.holdings == {}
    assert "Levent Trust" in {names[0] for names in engine.entities.values()}


def test_an_exempt_listed_company_reports_its_unspecified_owner() -> None:
    result, _ = run(_example("listed-company-exempt-from-disclosure.json"))
    (entry,) = result.report
    assert entry["code"] == "unspecified_party"
    assert "subjectExemptFromDisclosure" in entry["reason"]


# -- the bods-v04-fixtures conformance pack ---------------------------------------------------


def test_the_conformance_pack_is_covered() -> None:
    assert set(list_cases()) >= {
        "core/01-direct-ownership",
        "edge-cases/10-circular-ownership",
        "edge-cases/11-anonymous-person",
    }


def test_pack_direct_ownership_is_one_hop_at_75() -> None:
    fixture = load("core/01-direct-ownership")
    result, engine = run(fixture.statements)
    assert result.invalid == 0
    assert stake(result, engine, "rec-jane-smith-1975", "rec-acme-holdings-ltd") == 75
    owner = result.parties["rec-jane-smith-1975"]
    (path,) = engine.exposure_of(owner).paths[result.parties["rec-acme-holdings-ltd"]]
    assert len(path[1]) == 2  # a single hop


def test_pack_circular_ownership_terminates_and_is_not_inflated() -> None:
    """Alpha owns Beta, Beta owns Alpha, both 100 %: both edges kept, no total of 200 %."""
    fixture = load("edge-cases/10-circular-ownership")
    result, engine = run(fixture.statements)
    alpha, beta = "rec-alpha-corp", "rec-beta-corp"
    assert stake(result, engine, alpha, beta) == 100
    assert stake(result, engine, beta, alpha) == 100
    assert len(engine.graph.holdings) == 2  # neither side dropped
    exposure = engine.exposure_of(result.parties[alpha])
    assert result.parties[alpha] not in exposure.paths  # never its own owner


def test_pack_anonymous_owner_is_reported_with_its_reason_and_no_person_made_up() -> None:
    fixture = load("edge-cases/11-anonymous-person")
    result, engine = run(fixture.statements)
    (entry,) = [r for r in result.report if r["code"] == "unspecified_party"]
    assert "subjectUnableToConfirmOrIdentifyBeneficialOwner" in entry["reason"]
    assert len(engine.entities) == 1 and engine.graph.holdings == {}


# -- ranges ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("share", "expected", "controls"),
    [
        ({"minimum": 25, "maximum": 50}, 25, False),
        ({"exclusiveMinimum": 25, "maximum": 50}, 25.000001, False),
        ({"exclusiveMinimum": 50, "exclusiveMaximum": 75}, 50.000001, True),
        ({"minimum": 75, "maximum": 100}, 75, True),
        ({"exact": 12.5}, 12.5, False),
    ],
)
def test_a_range_counts_as_its_lower_bound(share: dict, expected: float, controls: bool) -> None:
    docs = [entity("co", "Vendor Co"), person("p", "Pat"), holding("r", "co", "p", shares(share))]
    result, engine = run(docs)
    assert stake(result, engine, "p", "co") == pytest.approx(expected, abs=1e-9)
    exposure = engine.exposure_of(result.parties["p"])
    assert (result.parties["co"] in exposure.controlled) is controls


def test_a_range_with_no_lower_bound_is_not_a_known_holding() -> None:
    docs = [entity("co", "Vendor Co"), person("p", "Pat")]
    docs.append(holding("r", "co", "p", shares({"maximum": 25})))
    result, engine = run(docs)
    assert codes(result) == ["no_share"] and engine.graph.holdings == {}


# -- updates, ended and closed interests --------------------------------------------------------


def test_updates_supersede_and_closed_records_exit() -> None:
    """Statements of one record over time (the shape of BODS's `tecido` example)."""
    docs = [
        entity("co", "Tecido Ltd", date="2019-01-20"),
        person("maria", "Maria Esteves", date="2019-01-20"),
        entity("trust", "Shear Trust", date="2021-09-25"),
        holding("r1", "co", "maria", shares({"exact": 100}), date="2019-01-20"),
        holding("r2", "co", "trust", shares({"exact": 60}), date="2021-09-25"),
        holding("r1", "co", "maria", shares({"exact": 40}), date="2021-09-25", status="updated"),
        holding("r2", "co", "trust", shares({"exact": 70}), date="2022-09-25", status="updated"),
        holding("r1", "co", "maria", shares({"exact": 30}), date="2022-09-25", status="updated"),
    ]
    result, engine = run(docs)
    assert stake(result, engine, "maria", "co") == 30
    assert stake(result, engine, "trust", "co") == 70
    closed = holding("r1", "co", "maria", shares({"exact": 30}), date="2023-03-03", status="closed")
    result, engine = run([*docs, closed])
    assert stake(result, engine, "maria", "co") == 0
    times = [orjson.loads(e)["time"] for e in result.events]
    assert times == sorted(times) and times[-1] == "2023-03-03T00:00:00Z"  # statement dates


def test_statements_out_of_date_order_still_end_at_the_latest() -> None:
    docs = [
        entity("co", "Vendor Co"),
        person("p", "Pat"),
        holding("r", "co", "p", shares({"exact": 20}), date="2024-06-01", status="updated"),
        holding("r", "co", "p", shares({"exact": 45}), date="2024-01-01"),
    ]
    result, engine = run(docs)
    assert stake(result, engine, "p", "co") == 20


def test_an_ended_interest_is_an_exit() -> None:
    docs = [
        entity("co", "Vendor Co", date="2020-01-01"),
        person("p", "Pat", date="2020-01-01"),
        holding("r", "co", "p", shares({"exact": 35}), date="2020-01-01"),
        holding(
            "r",
            "co",
            "p",
            shares({"exact": 35}, endDate="2023-06-30"),
            date="2023-07-01",
            status="updated",
        ),
    ]
    result, engine = run(docs)
    assert stake(result, engine, "p", "co") == 0
    assert "ended" in codes(result)


# -- joint ownership and trusts ------------------------------------------------------------------


def test_joint_ownership_through_an_arrangement() -> None:
    """BODS models joint holders as an arrangement that holds the shares, with each member's
    share of it (the standard's joint-ownership example)."""
    docs = [
        entity("co", "Chrinon Ltd"),
        entity("joint", "Joint shareholding", kind="arrangement"),
        person("nat", "Natalie Coleman"),
        person("rob", "Roberto Lopez"),
        holding("r1", "co", "joint", shares({"exact": 100})),
        holding("r2", "joint", "nat", shares({"exact": 50})),
        holding("r3", "joint", "rob", shares({"exact": 50})),
    ]
    result, engine = run(docs)
    assert stake(result, engine, "nat", "co") == 50
    assert stake(result, engine, "rob", "co") == 50


def test_joint_holders_with_no_share_given_are_reported_not_presumed_equal() -> None:
    docs = [
        entity("co", "Chrinon Ltd"),
        entity("joint", "Joint shareholding", kind="arrangement"),
        person("nat", "Natalie Coleman"),
        holding("r1", "co", "joint", shares({"exact": 100})),
        holding("r2", "joint", "nat", shares()),
    ]
    result, engine = run(docs)
    assert codes(result) == ["no_share"]
    assert engine.exposure_of(result.parties["nat"]).paths == {}


def test_a_trust_holding_shares_is_an_owner_and_its_roles_are_reported() -> None:
    docs = [
        entity("co", "Vendor Co"),
        entity("trust", "Family Trust", kind="arrangement", subtype="trust"),
        person("ben", "Ben Beneficiary"),
        holding("r1", "co", "trust", shares({"exact": 40})),
        holding("r2", "trust", "ben", shares(kind="beneficiaryOfLegalArrangement")),
    ]
    result, engine = run(docs)
    assert stake(result, engine, "trust", "co") == 40
    assert codes(result) == ["not_shareholding"]
    assert engine.exposure_of(result.parties["ben"]).paths == {}


# -- indirect interests ------------------------------------------------------------------------


def _chain(*, link: dict | None, stated: float, components: bool = True) -> list[dict]:
    """Person p holds `stated` % of A indirectly through B, which holds 50 % of A; p's share
    of B is `link` (None: not given)."""
    docs = [
        entity("a", "Company A"),
        entity("b", "Company B", component=True),
        person("p", "Pat"),
        holding("b-a", "a", "b", shares({"exact": 50}), component=True),
        holding("p-b", "b", "p", shares(link) if link else unknown_link(), component=True),
    ]
    refs = {"components": ["b", "b-a", "p-b"]} if components else {}
    docs.append(holding("p-a", "a", "p", shares({"exact": stated}, how="indirect"), **refs))
    return docs


def test_known_components_carry_an_indirect_interest_and_it_is_not_counted_twice() -> None:
    result, engine = run(_chain(link={"exact": 80}, stated=40))
    assert stake(result, engine, "p", "a") == pytest.approx(40, abs=1e-9)  # not 80
    assert "via_components" in codes(result)


def test_components_that_disagree_with_the_stated_figure_win_and_are_reported() -> None:
    result, engine = run(_chain(link={"exact": 80}, stated=30))
    assert stake(result, engine, "p", "a") == pytest.approx(40, abs=1e-9)
    assert "indirect_mismatch" in codes(result)


def test_an_unknown_component_share_is_derived_from_the_stated_figure() -> None:
    result, engine = run(_chain(link=None, stated=35))
    assert stake(result, engine, "p", "a") == pytest.approx(35, abs=1e-6)
    derived = [orjson.loads(e) for e in result.events if "/" in orjson.loads(e)["id"]]
    assert [d["data"]["percent"] for d in derived] == [pytest.approx(70)]


def test_components_too_small_for_the_figure_leave_a_direct_remainder() -> None:
    result, engine = run(_chain(link=None, stated=80))  # at 100 % of B: only 50 %
    assert stake(result, engine, "p", "a") == pytest.approx(80, abs=1e-6)
    assert "indirect_remainder" in codes(result)


def test_an_indirect_interest_without_components_is_the_holding() -> None:
    docs = _chain(link=None, stated=35, components=False)
    result, engine = run(docs)
    assert stake(result, engine, "p", "a") == pytest.approx(35, abs=1e-9)
    assert "no_share" in codes(result)  # the unknown link, reported


def test_mixed_direct_and_indirect_interests_add_up() -> None:
    """The standard's mixed example: 50 % directly, 50 % through B (B holds 50 % of A)."""
    docs = _chain(link=None, stated=50)
    docs[-1]["recordDetails"]["interests"].append(shares({"exact": 50}))
    result, engine = run(docs)
    assert stake(result, engine, "p", "a") == pytest.approx(100, abs=1e-6)


def test_closing_an_indirect_interest_withdraws_what_was_derived_from_it() -> None:
    docs = _chain(link=None, stated=35)
    closed = copy.deepcopy(docs[-1])
    closed.update(
        statementId=f"{next(_ids):032d}", recordStatus="closed", statementDate="2024-09-01"
    )
    result, engine = run([*docs, closed])
    assert stake(result, engine, "p", "a") == 0


def test_closing_a_component_link_ends_its_derived_share() -> None:
    docs = _chain(link=None, stated=35)
    link = copy.deepcopy(docs[4])
    link.update(statementId=f"{next(_ids):032d}", recordStatus="closed", statementDate="2024-09-01")
    result, engine = run([*docs, link])
    assert stake(result, engine, "p", "b") == 0
    assert stake(result, engine, "p", "a") == 0


# -- identity ------------------------------------------------------------------------------------


def _registration(entity_id: str, name: str, *identifiers: tuple[str, str]) -> bytes:
    data = {"id": entity_id, "name": name}
    if identifiers:
        data["identifiers"] = [{"scheme": s, "id": i} for s, i in identifiers]
    return orjson.dumps(
        {
            "specversion": "1.0",
            "id": f"reg-{entity_id}",
            "source": "/registry",
            "type": "entity.registered",
            "time": "2024-01-01T00:00:00Z",
            "data": data,
        }
    )


def test_a_record_with_a_known_identifier_lands_on_the_known_id() -> None:
    directory = Directory()
    assert (
        directory.add_registration(_registration("scale-ai", "Scale AI", ("GB-COH", "123"))) is None
    )
    docs = [
        entity("co", "SCALE AI LIMITED", ("GB-COH", "123")),
        entity("meta", "Meta Platforms Inc", ("XI-LEI", "BQ4BKCS1HXDV9HN80Z93")),
        holding("r", "co", "meta", shares({"exact": 49})),
    ]
    result, engine = run(docs, directory)
    assert result.parties["co"] == "scale-ai"
    assert stake(result, engine, "meta", "co") == 49
    assert "scale-ai" not in engine.entities  # the known registration stands
    assert "matched" in codes(result)


def test_identifiers_naming_two_known_ids_are_reported_as_a_clash() -> None:
    directory = Directory()
    directory.add_registration(_registration("scale-ai", "Scale AI", ("GB-COH", "123")))
    directory.add_registration(_registration("scale-holdings", "Scale", ("XI-LEI", "LEI1")))
    result, _ = run([entity("co", "Scale", ("GB-COH", "123"), ("XI-LEI", "LEI1"))], directory)
    assert result.parties["co"] == "scale-ai"
    (clash,) = [r for r in result.report if r["code"] == "identity_clash"]
    assert "scale-holdings" in clash["reason"]


def test_two_records_of_one_company_land_on_one_id() -> None:
    docs = [
        entity("c1", "Vendor Co", ("GB-COH", "77")),
        entity("c2", "VENDOR CO LTD", ("GB-COH", "77")),
        person("p", "Pat"),
        holding("r", "c2", "p", shares({"exact": 20})),
    ]
    result, engine = run(docs)
    assert result.parties["c1"] == result.parties["c2"]
    assert stake(result, engine, "p", "c1") == 20
    assert "same_entity" in codes(result)


def test_slugs_are_stable_whatever_else_the_file_holds() -> None:
    alone, _ = run([entity("x", "Zeta Labs", ("XI-LEI", "ZETA")), person("p", "Pat")])
    other, _ = run([person("q", "Quinn"), entity("y", "Zeta Labs", ("XI-LEI", "ZETA"))])
    assert alone.parties["x"] == other.parties["y"]
    assert alone.parties["x"].startswith("zeta-labs-")
    # same name, another company: another id
    third, _ = run([entity("z", "Zeta Labs", ("XI-LEI", "OTHER"))])
    assert third.parties["z"] != alone.parties["x"]


def test_a_digest_collision_gets_a_longer_digest() -> None:
    digest = hashlib.sha256(b"key-1").hexdigest()
    directory = Directory()
    directory._keys[f"zeta-{digest[:8]}"] = "another key"  # as if its 8 hex digits collided
    assert directory.assign("zeta", "key-1") == f"zeta-{digest[:12]}"
    assert directory.assign("zeta", "key-1") == f"zeta-{digest[:12]}"  # and stays so


# -- invalid input and the command ---------------------------------------------------------------


def test_invalid_statements_are_reported_and_the_rest_convert() -> None:
    docs = [
        entity("co", "Vendor Co"),
        person("p", "Pat"),
        holding("r", "co", "p", shares({"exact": 30})),
    ]
    broken = copy.deepcopy(docs[1])
    broken["recordType"] = "human"
    result, _ = run([*docs, broken])
    assert result.invalid == 1
    (entry,) = [r for r in result.report if r["kind"] == "invalid"]
    assert entry["code"] == "schema" and "recordType" in entry["reason"]
    assert entry["at"] == "index 3"
    assert len(result.events) == 3


def test_the_command_reads_json_lines_from_stdin_writes_the_report_and_exits_1(tmp_path) -> None:
    docs = [
        entity("co", "Vendor Co"),
        person("p", "Pat"),
        holding("r", "co", "p", shares({"exact": 30})),
    ]
    lines = b"\n".join(orjson.dumps(d) for d in docs) + b"\n{not json\n"
    report = tmp_path / "report.jsonl"
    done = CliRunner().invoke(app, ["import", "bods", "-", "--report", str(report)], input=lines)
    assert done.exit_code == 1, done.output
    events = [decode(line) for line in done.stdout.splitlines()]
    assert len(events) == 3 and not any(isinstance(e, Rejection) for e in events)
    (entry,) = [orjson.loads(line) for line in report.read_bytes().splitlines()]
    assert (entry["at"], entry["code"]) == ("line 4", "invalid_json")
    assert "3 events (2 entity.registered, 1 ownership.stake)" in done.stderr
    assert "invalid: 1 (invalid_json 1)" in done.stderr


def test_the_command_on_the_examples_exits_0_and_a_second_run_gives_the_same_events() -> None:
    runner = CliRunner()
    args = ["import", "bods", *map(str, EXAMPLES)]
    first, second = runner.invoke(app, args), runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert first.stdout == second.stdout and first.stdout.count("\n") > 15
    engine = Engine()
    for line in first.stdout.splitlines():
        assert engine.process(line.encode()).rejection is None
    again = [engine.process(line.encode()).rejection for line in first.stdout.splitlines()]
    assert {r.code for r in again} == {"duplicate"}  # a re-import is a no-op


def test_entities_file_lets_a_record_land_on_a_known_id(tmp_path) -> None:
    known = tmp_path / "entities.ndjson"
    known.write_bytes(_registration("company-a", "Company A", ("GB-COH", "XE9999")) + b"\n")
    done = CliRunner().invoke(
        app, ["import", "bods", str(FIXTURES / "indirect-ownership.json"), "--entities", str(known)]
    )
    assert done.exit_code == 0, done.output
    stakes = [
        orjson.loads(line)["data"] for line in done.stdout.splitlines() if "ownership" in line
    ]
    assert {d["asset"] for d in stakes} >= {"company-a"}
