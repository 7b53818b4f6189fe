"""`stakewatch import csv contracts|spend`: procurement and AP exports → events.

Money, dates, currencies, column mappings, stable ids and bad rows, each checked through
the events the engine then applies (or the report line that says why a row is not one).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from streams.cli import app
from streams.engine import Engine
from streams.imports.csv_rows import Mapping, MappingError, convert_csv, read_rates
from streams.imports.identity import Directory

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "csv"
SPEND_MAP = {"Supplier Name": "vendor", "Amount": "amount", "Paid On": "time", "PO": "contract_id"}
CONTRACT_MAP = {
    "Contract No": "contract_id",
    "Buyer": "client",
    "Supplier": "vendor",
    "Category": "category",
    "Data Shared": "data_classes",
    "Annual Value": "annual_value",
    "Currency": "currency",
    "Award Date": "time",
    "End Date": "ends_on",
}


def spend(text: str, **mapping_kw):
    mapping = Mapping(
        columns={"vendor": "vendor", "amount": "amount", "time": "time"},
        constants={"client": "openai"},
        **mapping_kw,
    )
    return convert_csv("spend", ("vendor,amount,time\n" + text).encode(), mapping, Directory())


def data(result) -> list[dict]:
    return [orjson.loads(e)["data"] for e in result.events]


def reasons(result) -> list[tuple[int, str, str]]:
    return [(r["line"], r["code"], r["reason"]) for r in result.report if r["kind"] == "invalid"]


# -- money ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "amount"),
    [
        ('"$1,234.50"', 1234.5),
        ("1234", 1234.0),
        ('"USD 12"', 12.0),
        ('"US$ 1,000.00"', 1000.0),
        ('"1,234,567.89"', 1234567.89),
        ('"$0.50"', 0.5),
    ],
)
def test_money_as_procurement_systems_write_it(text: str, amount: float) -> None:
    result = spend(f"scale-ai,{text},2025-12-31\n")
    assert data(result) == [{"client": "openai", "vendor": "scale-ai", "amount": amount}]


@pytest.mark.parametrize(
    ("text", "code", "words"),
    [
        ('"($500.00)"', "money", "negative"),
        ("-5", "money", "negative"),
        ("$0.00", "money", "more than 0"),
        ("n/a", "money", "not an amount"),
        ('"€1.234,50"', "currency", "is in EUR"),
        ('"1.234,50 £"', "currency", "is in GBP"),
        ("¥1000", "currency", "several currencies"),
    ],
)
def test_bad_money_is_a_bad_row_with_its_reason(text: str, code: str, words: str) -> None:
    result = spend(f"scale-ai,{text},2025-12-31\n")
    assert result.events == [] and result.invalid == 1
    ((line, got, reason),) = reasons(result)
    assert (line, got) == (2, code) and words in reason


def test_a_rates_file_converts_other_currencies_to_dollars(tmp_path: Path) -> None:
    rates = read_rates(FIXTURES / "rates.toml")
    assert rates == {"EUR": Decimal("1.08"), "GBP": Decimal("1.27")}
    mapping = Mapping(columns={"vendor": "vendor", "amount": "amount", "time": "time"})
    mapping.constants["client"] = "openai"
    text = b'vendor,amount,time\nturing,"EUR 10.000,00",2026-01-06\nturing,\xc2\xa3100,2026-01-06\n'
    result = convert_csv("spend", text, mapping, Directory(), rates=rates)
    assert [d["amount"] for d in data(result)] == [10800.0, 127.0]
    bad = tmp_path / "bad.toml"
    bad.write_text("EUR = -1\n")
    with pytest.raises(MappingError, match="EUR must be > 0"):
        read_rates(bad)


def test_a_currency_column_that_contradicts_the_symbol_is_refused() -> None:
    mapping = Mapping(
        columns={"vendor": "vendor", "amount": "amount", "time": "time", "cur": "currency"},
        constants={"client": "openai"},
    )
    text = b'vendor,amount,time,cur\nturing,"$100",2026-01-06,EUR\nturing,100,2026-01-06,usd\n'
    result = convert_csv("spend", text, mapping, Directory())
    assert [c for _, c, _ in reasons(result)] == ["currency"]
    assert data(result) == [{"client": "openai", "vendor": "turing", "amount": 100.0}]


def test_the_decimal_separator_can_be_said() -> None:
    dot = spend("scale-ai,1.234,2025-12-31\n", decimal_separator=".")
    comma = spend("scale-ai,1.234,2025-12-31\n")
    assert data(dot)[0]["amount"] == 1.23 and data(comma)[0]["amount"] == 1234.0


# -- dates -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "time"),
    [
        ("2025-12-31", "2025-12-31"),
        ("2025-12-31T18:30:00Z", "2025-12-31"),
        ("12/31/2025", "2025-12-31"),
        ("3/4/2025", "2025-03-04"),
        ("31.12.2025", "2025-12-31"),
    ],
)
def test_common_date_formats(text: str, time: str) -> None:
    (event,) = spend(f"scale-ai,10,{text}\n").events
    assert orjson.loads(event)["time"] == f"{time}T00:00:00Z"


def test_a_day_first_file_needs_its_date_format() -> None:
    text = "scale-ai,10,03/04/2025\nscale-ai,11,31/12/2025\n"
    result = spend(text)
    assert result.events == []
    assert [(line, code) for line, code, _ in reasons(result)] == [(2, "date"), (3, "date")]
    assert "day-first in places (line 3)" in reasons(result)[0][2]
    told = spend(text, date_format="%d/%m/%Y")
    assert [orjson.loads(e)["time"][:10] for e in told.events] == ["2025-04-03", "2025-12-31"]


def test_an_impossible_date_is_a_bad_row() -> None:
    result = spend("scale-ai,10,2025-02-30\nscale-ai,10,\n")
    assert [code for _, code, _ in reasons(result)] == ["date", "date"]


# -- ids, parties, mappings ------------------------------------------------------------------------


def test_ids_are_a_digest_of_the_row_and_a_reimport_is_a_no_op() -> None:
    text = "scale-ai,10,2025-12-31\nscale-ai,10,2025-12-31\nlabelbox,5,2025-12-31\n"
    first, second = spend(text), spend(text)
    assert first.events == second.events
    ids = [orjson.loads(e)["id"] for e in first.events]
    assert ids[1] == ids[0] + "-2"  # the same row twice: two payments, two ids
    engine = Engine()
    assert all(engine.process(e).rejection is None for e in first.events)
    assert {engine.process(e).rejection.code for e in second.events} == {"duplicate"}


def test_names_land_on_known_entities_and_unknown_names_are_reported() -> None:
    directory = Directory()
    directory.add_known("scale-ai", "Scale AI", ["Scale"], [])
    directory.add_known("scale-holdings", "Scale Holdings", [], [])
    directory.add_known("turing-a", "Turing", [], [])
    directory.add_known("turing-b", "Turing Inc", [], [])
    mapping = Mapping(
        columns={"vendor": "vendor", "amount": "amount", "time": "time"},
        constants={"client": "openai"},
    )
    text = (
        b"vendor,amount,time\nScale AI Inc.,1,2025-01-01\nSCALE,2,2025-01-01\n"
        b"New Co Ltd,3,2025-01-01\nTuring,4,2025-01-01\n"
    )
    result = convert_csv("spend", text, mapping, directory)
    assert [d["vendor"] for d in data(result)] == ["scale-ai", "scale-ai", "new-co"]
    notes = [r for r in result.report if r["code"] == "new_entity"]
    assert [(n["line"], n["kind"]) for n in notes] == [(4, "note")]
    ((line, code, reason),) = reasons(result)
    assert (line, code) == (5, "ambiguous_name") and "turing-a, turing-b" in reason


def test_line_numbers_count_physical_lines() -> None:
    mapping = Mapping(
        columns={"vendor": "vendor", "amount": "amount", "time": "time", "note": "currency"},
        constants={"client": "openai"},
    )
    text = (
        b'vendor,amount,time,note\nscale-ai,1,2025-01-01,\n"a\nmulti-line",2,2025-01-01,\n'
        b"scale-ai,-3,2025-01-01,\n"
    )
    result = convert_csv("spend", text, mapping, Directory())
    assert [line for line, _, _ in reasons(result)] == [5]


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ({"Supplier": "vendor", "Amount": "amount", "Paid": "time"}, "column 'Supplier' is not"),
        ({"vendor": "supplier", "amount": "amount", "time": "time"}, "not a spend field"),
        ({"vendor": "vendor", "amount": "amount"}, "no column for time"),
    ],
)
def test_a_mapping_that_does_not_fit_the_file_is_refused(columns, message) -> None:
    mapping = Mapping(columns=columns, constants={"client": "openai"})
    with pytest.raises(MappingError, match=message):
        convert_csv("spend", b"vendor,amount,time\n", mapping, Directory())


# -- contracts ------------------------------------------------------------------------------------


def test_contracts_sign_then_amend_and_spend_follows_them(tmp_path: Path) -> None:
    rates = read_rates(FIXTURES / "rates.toml")
    contracts = convert_csv(
        "contracts",
        (FIXTURES / "contracts.csv").read_bytes(),
        Mapping(columns=dict(CONTRACT_MAP)),
        Directory(),
        rates=rates,
    )
    assert contracts.invalid == 0, contracts.report
    events = [orjson.loads(e) for e in contracts.events]
    assert [e["type"] for e in events] == ["contract.signed"] * 3 + ["contract.amended"]
    first = events[0]["data"]
    assert first == {
        "contract_id": "C-2025-001",
        "client": "openai",
        "vendor": "scale-ai",
        "category": "data-labeling",
        "data_classes": ["prototypes", "internal_documents"],
        "annual_value": 12_000_000.0,
        "ends_on": "2026-12-31",
    }
    assert events[2]["data"]["annual_value"] == 1_296_000.0  # €1.2M at 1.08
    assert events[3]["data"] == {
        "contract_id": "C-2025-001",
        "data_classes": ["prototypes", "internal_documents", "model_weights"],
    }
    spend_rows = convert_csv(
        "spend",
        (FIXTURES / "spend.csv").read_bytes(),
        Mapping(columns=dict(SPEND_MAP), constants={"client": "openai"}),
        Directory(),
        rates=rates,
    )
    assert [(r["line"], r["code"]) for r in spend_rows.report if r["kind"] == "invalid"] == [
        (4, "money")
    ]
    engine = Engine()
    for raw in contracts.events + spend_rows.events:
        assert engine.process(raw).rejection is None, raw
    assert engine.spend_365d("openai", "scale-ai") == 4_002_469.0


def test_a_contract_row_that_changes_nothing_or_its_parties_is_reported() -> None:
    columns = {"id": "contract_id", "c": "client", "v": "vendor", "cat": "category", "t": "time"}
    text = (
        b"id,c,v,cat,t\nK1,openai,turing,eval,2025-01-01\nK1,openai,turing,eval,2025-02-01\n"
        b"K1,openai,labelbox,eval,2025-03-01\n"
    )
    result = convert_csv("contracts", text, Mapping(columns=columns), Directory())
    assert [(r["line"], r["code"]) for r in result.report] == [
        (3, "unchanged"),
        (4, "contract_parties"),
    ]


# -- the command ----------------------------------------------------------------------------------


def test_the_command_with_a_toml_mapping_report_and_exit_status(tmp_path: Path) -> None:
    mapping = tmp_path / "ap.toml"
    mapping.write_text(
        '[columns]\n"Supplier Name" = "vendor"\nAmount = "amount"\n"Paid On" = "time"\n'
        'PO = "contract_id"\n[constants]\nclient = "openai"\n'
    )
    report = tmp_path / "report.jsonl"
    args = ["import", "csv", "spend", str(FIXTURES / "spend.csv"), "--mapping", str(mapping)]
    done = CliRunner().invoke(app, [*args, "--report", str(report)])
    assert done.exit_code == 1
    entries = [orjson.loads(line) for line in report.read_bytes().splitlines()]
    assert {(e["line"], e["code"]) for e in entries if e["kind"] == "invalid"} == {
        (4, "money"),
        (5, "currency"),
    }
    assert len(done.stdout.splitlines()) == 4
    ok = CliRunner().invoke(app, [*args, "--rates", str(FIXTURES / "rates.toml")])
    assert ok.exit_code == 1 and len(ok.stdout.splitlines()) == 5  # the credit note stays bad
    bad = CliRunner().invoke(
        app, ["import", "csv", "spend", str(FIXTURES / "spend.csv"), "--map", "Nope=vendor"]
    )
    assert bad.exit_code == 2 and "column 'Nope' is not in the file" in bad.stderr
