"""BODS 0.4 input: statements read from JSON arrays or JSON Lines, checked against the
standard's JSON Schema before anything is converted.

The schema is Open Ownership's own (``bods_schema/``, Apache-2.0), validated with
`jsonschema` (draft 2020-12, the records found by their ``$id``). Why not `libcovebods`,
the official validator, at run time: it is AGPL-3.0, installs a top-level ``tests``
package, and its additional checks download org-id.guide's list over the network; the test
suite runs it instead and checks that its verdicts and ours agree (docs/ingest.md).
Formats checked: ``date`` and ``date-time`` (the statement dates become event times).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import orjson
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource

__all__ = ["Statement", "read_statements", "schema_errors"]

_SCHEMAS = ("statement", "components", "entity-record", "person-record", "relationship-record")


@dataclass(frozen=True, slots=True)
class Statement:
    """One statement and where it came from: file and position (array index from 0, or
    line number from 1 for JSON Lines)."""

    doc: Any
    file: str
    where: str  # "index 3" or "line 4"

    def locate(self) -> dict[str, Any]:
        doc = self.doc if isinstance(self.doc, dict) else {}
        out: dict[str, Any] = {"file": self.file, "at": self.where}
        for name in ("statementId", "recordId", "recordType"):
            if isinstance(doc.get(name), str):
                out[name] = doc[name]
        return out


def read_statements(name: str, data: bytes) -> tuple[list[Statement], list[dict[str, Any]]]:
    """The statements of one input (a JSON array, one object, or JSON Lines) and the parts
    that are not JSON, each as a report entry."""
    try:
        whole = orjson.loads(data)
    except orjson.JSONDecodeError:
        whole = None
    else:
        if isinstance(whole, list):
            return [Statement(doc, name, f"index {i}") for i, doc in enumerate(whole)], []
        if isinstance(whole, dict):
            return [Statement(whole, name, "index 0")], []
        return [], [_bad(name, "index 0", "not a JSON array of statements")]
    statements, bad = [], []
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            statements.append(Statement(orjson.loads(line), name, f"line {number}"))
        except orjson.JSONDecodeError as exc:
            bad.append(_bad(name, f"line {number}", f"not JSON: {exc}"))
    return statements, bad


def _bad(name: str, where: str, reason: str) -> dict[str, Any]:
    return {"file": name, "at": where, "kind": "invalid", "code": "invalid_json", "reason": reason}


@cache
def _validator() -> Draft202012Validator:
    folder = resources.files("streams.imports") / "bods_schema"
    resources_ = []
    for name in _SCHEMAS:
        doc = json.loads((folder / f"{name}.json").read_text(encoding="utf-8"))
        resources_.append((doc["$id"], Resource.from_contents(doc)))
    registry: Registry = Registry().with_resources(resources_)
    checker = FormatChecker(formats=())
    checker.checks("date", raises=ValueError)(_date)
    checker.checks("date-time", raises=ValueError)(_date_time)
    # Each statement alone: the schema's array wrapper is `items: Statement`.
    single = {"$ref": "urn:statement#/$defs/Statement"}
    return Draft202012Validator(single, registry=registry, format_checker=checker)


def _date(value: object) -> bool:
    if isinstance(value, str):
        dt.date.fromisoformat(value)
        if len(value) != 10:
            raise ValueError(value)
    return True


def _date_time(value: object) -> bool:
    if isinstance(value, str):
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
        if parsed.tzinfo is None or "T" not in value.upper():
            raise ValueError(value)
    return True


def schema_errors(doc: Any) -> list[str]:
    """Why the statement is not valid BODS 0.4 (empty when it is), one line each."""
    out = []
    for error in sorted(_validator().iter_errors(doc), key=lambda e: list(e.absolute_path)):
        path = "/".join(str(p) for p in error.absolute_path) or "statement"
        out.append(f"{path}: {_clip(error.message)}")
    return out


def _clip(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"


def invalid(statements: Iterable[Statement]) -> dict[int, list[str]]:
    """Index in `statements` → schema errors, for those that have any."""
    return {i: errs for i, s in enumerate(statements) if (errs := schema_errors(s.doc))}
