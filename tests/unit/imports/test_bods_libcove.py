"""Our BODS 0.4 validation agrees with the official validator, `libcovebods`.

The importer validates with the standard's JSON Schema (vendored) and `jsonschema`
(streams/imports/bods_validate.py says why not `libcovebods` at run time). Here
`libcovebods` judges the same statements — the official examples, the conformance pack,
and broken variants of them — and the statements it finds invalid must be exactly ours.
Its additional checks run too, offline (the one that downloads org-id.guide's list is left
out), and must find nothing in the examples.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from bods_fixtures import list_cases, load
from libcovebods.config import LibCoveBODSConfig
from libcovebods.data_reader import DataReader
from libcovebods.jsonschemavalidate import JSONSchemaValidator
from libcovebods.run_tasks import TASK_CLASSES, process_additional_checks
from libcovebods.schema import SchemaBODS

from streams.imports.bods_validate import read_statements, schema_errors

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "bods"
# these fetch org-id.guide's list over the network (the legacy ones apply to BODS < 0.4 only)
ONLINE = {
    "CheckStatementEntityIdentifiersHaveKnownScheme",
    "LegacyChecks",
    "LegacyChecksNeedingHistory",
}


class Statements(DataReader):
    """libcovebods reads data through `get_all_data`: hand it statements in memory."""

    def __init__(self, statements: list) -> None:
        super().__init__(filename=None)
        self._statements = statements

    def get_all_data(self):
        return self._statements


def official_invalid(statements: list) -> set[int]:
    reader = Statements(statements)
    schema = SchemaBODS(reader)
    assert schema.schema_version == "0.4"
    errors = JSONSchemaValidator(schema).validate(reader)
    return {e.json()["path"][0] for e in errors}


def ours_invalid(statements: list) -> set[int]:
    return {i for i, doc in enumerate(statements) if schema_errors(doc)}


def all_inputs() -> dict[str, list]:
    inputs = {}
    for path in sorted(FIXTURES.glob("*.json")):
        found, bad = read_statements(path.name, path.read_bytes())
        assert not bad
        inputs[path.name] = [s.doc for s in found]
    for case in list_cases():
        inputs[case] = load(case).statements
    return inputs


INPUTS = all_inputs()


def _broken() -> dict[str, list]:
    base = INPUTS["indirect-ownership.json"]
    out = {}

    def variant(name, index, change):
        docs = copy.deepcopy(base)
        change(docs[index])
        out[name] = docs

    variant("no statementId", 0, lambda d: d.pop("statementId"))
    variant("short statementId", 1, lambda d: d.update(statementId="abc"))
    variant("unknown recordType", 2, lambda d: d.update(recordType="human"))
    variant("bad statementDate", 3, lambda d: d.update(statementDate="2018-02-30"))
    variant("no statementDate", 4, lambda d: d.pop("statementDate"))
    variant(
        "share as text",
        3,
        lambda d: d["recordDetails"]["interests"][0].update(share={"exact": "60"}),
    )
    variant("interests not a list", 5, lambda d: d["recordDetails"].update(interests={}))
    variant("unknown recordStatus", 0, lambda d: d.update(recordStatus="deleted"))
    variant(
        "unknown interest type", 3, lambda d: d["recordDetails"]["interests"][0].update(type="x")
    )
    return out


BROKEN = _broken()


@pytest.mark.parametrize("name", sorted(INPUTS), ids=sorted(INPUTS))
def test_the_official_inputs_are_valid_for_both(name: str) -> None:
    statements = INPUTS[name]
    assert official_invalid(statements) == ours_invalid(statements) == set()


@pytest.mark.parametrize("name", sorted(BROKEN), ids=sorted(BROKEN))
def test_broken_statements_are_the_same_for_both(name: str) -> None:
    statements = BROKEN[name]
    found = ours_invalid(statements)
    assert found, name
    assert official_invalid(statements) == found


@pytest.mark.parametrize("name", sorted(INPUTS), ids=sorted(INPUTS))
def test_the_official_additional_checks_find_nothing_in_the_examples(name: str) -> None:
    reader = Statements(INPUTS[name])
    schema = SchemaBODS(reader)
    tasks = [t for t in TASK_CLASSES if t.__name__ not in ONLINE]
    checks = process_additional_checks(reader, LibCoveBODSConfig(), schema, tasks)
    assert checks["additional_checks"] == []
