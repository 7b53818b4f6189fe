"""Procurement and AP exports (CSV) → `contract.signed` / `contract.amended` and
`spend.recorded` events, through a column mapping (docs/ingest.md, "CSV").

- **Mapping.** ``--map "Supplier=vendor,Paid on=time,..."`` or a TOML file (``[columns]``,
  ``[constants]`` for values every row shares, such as the client in one's own AP export).
- **Parties.** A value that is an entity id stays one; otherwise the name is matched
  against the known entities' names and aliases (legal forms such as "Inc." aside), and an
  unknown name becomes the slug of its name (a new entity, said in the report).
- **Money** is read by `price-parser` ("$1,234.50", "1.234,50 €", "EUR 12"); a minus sign or
  parentheses make it a credit, which is not spend. The currency is the currency column,
  else the amount's symbol or code, else US dollars. Anything not in USD needs a rates file
  (``EUR = 1.08``: US dollars per unit) and is converted with it; without one the row is
  refused, saying so.
- **Dates**: ISO (``2025-12-31``), US ``12/31/2025``, ``31.12.2025``; with ``--date-format``
  (strptime) only that. A file whose slash dates are day-first anywhere (``31/12/2025``)
  gets none of its slash dates read without ``--date-format``: a guess would misread every
  day up to the 12th.
- **Ids**: ``csv-`` and a SHA-256 of the row's mapped content (its k-th repeat in the file
  gets ``-k``), so importing the same rows again is a no-op (the engine's duplicates).
- **Contracts**: a contract id's first row signs it, a later row with changed fields
  amends those fields; a row that changes nothing is reported.
- Every row that becomes no event is reported with its line number; nothing is dropped.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import re
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import orjson
from price_parser import Price

from streams.events import Rejection, decode
from streams.events.models import SLUG_PATTERN
from streams.imports.identity import Directory, name_key

__all__ = ["FIELDS", "KINDS", "CsvResult", "Mapping", "MappingError", "convert_csv", "read_rates"]

KINDS = ("contracts", "spend")
FIELDS: dict[str, tuple[frozenset[str], frozenset[str]]] = {  # kind -> (required, optional)
    "contracts": (
        frozenset({"contract_id", "client", "vendor", "category", "time"}),
        frozenset({"data_classes", "annual_value", "ends_on", "currency"}),
    ),
    "spend": (
        frozenset({"client", "vendor", "amount", "time"}),
        frozenset({"contract_id", "currency"}),
    ),
}
_SLUG = re.compile(SLUG_PATTERN)
_SYMBOLS = {"$": "USD", "US$": "USD", "USD": "USD", "€": "EUR", "£": "GBP", "CHF": "CHF"}
_AMBIGUOUS_SYMBOLS = {"¥", "kr", "R$", "C$", "A$"}
_ISO_CODE = re.compile(r"[A-Z]{3}")
_US = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")
_DOTTED = re.compile(r"(\d{1,2})\.(\d{1,2})\.(\d{4})")


class MappingError(ValueError):
    """The mapping, the rates or the file's header cannot be used (exit 2, one line)."""


@dataclass
class Mapping:
    columns: dict[str, str] = field(default_factory=dict)  # CSV column -> event field
    constants: dict[str, str] = field(default_factory=dict)  # event field -> value
    date_format: str | None = None
    decimal_separator: str | None = None
    list_separator: str = ";"

    @classmethod
    def parse(cls, text: str) -> dict[str, str]:
        """``col=field,col2=field2`` (a column name may hold spaces, not commas)."""
        out = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            column, sep, name = part.rpartition("=")
            if not sep or not column.strip() or not name.strip():
                raise MappingError(f"--map: {part!r} is not column=field")
            out[column.strip()] = name.strip()
        return out

    @classmethod
    def from_toml(cls, path: Path) -> Mapping:
        try:
            doc = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise MappingError(f"--mapping: cannot read {path}: {exc}") from None
        unknown = set(doc) - {"columns", "constants", "date_format", "decimal_separator",
                              "list_separator"}  # fmt: skip
        if unknown:
            raise MappingError(f"--mapping: unknown setting {sorted(unknown)[0]!r}")
        return cls(
            columns={str(k): str(v) for k, v in doc.get("columns", {}).items()},
            constants={str(k): str(v) for k, v in doc.get("constants", {}).items()},
            date_format=doc.get("date_format"),
            decimal_separator=doc.get("decimal_separator"),
            list_separator=doc.get("list_separator", ";"),
        )

    def check(self, kind: str, header: list[str]) -> None:
        required, optional = FIELDS[kind]
        for column, name in self.columns.items():
            if name not in required | optional:
                allowed = ", ".join(sorted(required | optional))
                raise MappingError(f"{column!r} maps to {name!r}, not a {kind} field ({allowed})")
            if column not in header:
                raise MappingError(
                    f"column {column!r} is not in the file (its columns: {', '.join(header)})"
                )
        for name in self.constants:
            if name not in required | optional:
                raise MappingError(f"constant {name!r} is not a {kind} field")
        given = set(self.columns.values()) | set(self.constants)
        missing = sorted(required - given)
        if missing:
            raise MappingError(
                f"no column for {', '.join(missing)}: map one (--map 'Column=field') or set "
                "a constant"
            )
        if self.decimal_separator not in (None, ".", ","):
            raise MappingError("decimal separator: '.' or ','")


def read_rates(path: Path) -> dict[str, Decimal]:
    """``CODE = US dollars per unit`` lines (TOML), e.g. ``EUR = 1.08``."""
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise MappingError(f"--rates: cannot read {path}: {exc}") from None
    rates = {}
    for code, value in doc.items():
        if not _ISO_CODE.fullmatch(code) or isinstance(value, bool):
            raise MappingError(f"--rates: {code!r} is not a currency code = number")
        try:
            rate = Decimal(str(value))
        except InvalidOperation:
            raise MappingError(f"--rates: {code} = {value!r} is not a number") from None
        if not rate > 0:
            raise MappingError(f"--rates: {code} must be > 0")
        rates[code] = rate
    return rates


@dataclass
class CsvResult:
    events: list[bytes] = field(default_factory=list)
    report: list[dict[str, Any]] = field(default_factory=list)
    rows: int = 0
    invalid: int = 0


class RowError(Exception):
    """One row cannot become an event: ``code`` and a one-line reason."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code


def convert_csv(
    kind: str,
    data: bytes,
    mapping: Mapping,
    directory: Directory,
    *,
    name: str = "-",
    source: str | None = None,
    rates: dict[str, Decimal] | None = None,
    delimiter: str | None = None,
) -> CsvResult:
    """Rows → events (sorted by event time, a contract's signing first), report entries."""
    text = data.decode("utf-8-sig")
    if delimiter is None:
        try:
            delimiter = csv.Sniffer().sniff(text[:8192], delimiters=",;\t|").delimiter
        except csv.Error:
            delimiter = ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise MappingError(f"{name}: empty file (no header row)") from None
    mapping.check(kind, header)
    rows: list[tuple[int, dict[str, str]]] = []
    line = reader.line_num
    for values in reader:
        start, line = line + 1, reader.line_num
        row = {header[i]: v.strip() for i, v in enumerate(values) if i < len(header)}
        mapped = {f: row.get(c, "") for c, f in mapping.columns.items()}
        rows.append((start, {**mapping.constants, **{k: v for k, v in mapped.items() if v}}))
    rows_reader = _Rows(kind, mapping, directory, name, source or f"/import/csv/{kind}", rates)
    return rows_reader.run(rows)


class _Rows:
    def __init__(self, kind, mapping, directory, name, source, rates) -> None:
        self.kind, self.mapping, self.directory = kind, mapping, directory
        self.name, self.source, self.rates = name, source, rates
        self.result = CsvResult()
        self.repeats: Counter[str] = Counter()
        self.contracts: dict[str, dict[str, Any]] = {}  # id -> fields as last signed/amended
        self.new_names: set[str] = set()
        self.day_first_line: int | None = None

    def run(self, rows: list[tuple[int, dict[str, str]]]) -> CsvResult:
        r = self.result
        r.rows = len(rows)
        if self.mapping.date_format is None:
            self.day_first_line = next(
                (
                    line
                    for line, row in rows
                    for f in ("time", "ends_on")
                    if (m := _US.fullmatch(row.get(f, ""))) and int(m[1]) > 12
                ),
                None,
            )
        out: list[tuple[int, int, bytes]] = []
        for order, (line, row) in enumerate(rows):
            if not any(row.get(f) for f in FIELDS[self.kind][0] - set(self.mapping.constants)):
                self.say(line, "skipped", "blank", "no mapped value in this row")
                continue
            try:
                when, raw = self.event(line, row)
            except RowError as exc:
                r.invalid += 1
                self.say(line, "invalid", exc.code, str(exc))
                continue
            if raw is not None:
                out.append((when, order, raw))
        out.sort()
        r.events = [raw for *_, raw in out]
        return r

    def say(self, line: int, kind: str, code: str, reason: str) -> None:
        self.result.report.append(
            {"file": self.name, "line": line, "kind": kind, "code": code, "reason": reason}
        )

    # -- one row ------------------------------------------------------------------------------

    def event(self, line: int, row: dict[str, str]) -> tuple[int, bytes | None]:
        when = self.date(row, "time")
        time = dt.datetime.combine(when, dt.time(), dt.UTC)
        client, vendor = self.party(line, row, "client"), self.party(line, row, "vendor")
        currency = row.get("currency", "").upper() or None
        if self.kind == "spend":
            data: dict[str, Any] = {
                "client": client,
                "vendor": vendor,
                "amount": self.money(row, "amount", currency),
            }
            if row.get("contract_id"):
                data["contract_id"] = row["contract_id"]
            etype = "spend.recorded"
        else:
            etype, changed = self.contract(row, client, vendor, currency, time)
            if changed is None:
                self.say(
                    line, "skipped", "unchanged", f"contract {row['contract_id']!r}: no change"
                )
                return 0, None
            data = changed
        content = orjson.dumps(
            [self.kind, etype, time.isoformat(), data], option=orjson.OPT_SORT_KEYS
        )
        digest = hashlib.sha256(content).hexdigest()[:32]
        self.repeats[digest] += 1
        k = self.repeats[digest]
        event = {
            "specversion": "1.0",
            "id": f"csv-{digest}" + (f"-{k}" if k > 1 else ""),
            "source": self.source,
            "type": etype,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "data": data,
        }
        raw = orjson.dumps(event)
        checked = decode(raw)
        if isinstance(checked, Rejection):
            raise RowError(checked.code, f"the event is refused: {checked.detail}")
        if etype == "contract.signed":
            self.contracts[data["contract_id"]] = {**data, "time": time}
        elif etype == "contract.amended":
            self.contracts[data["contract_id"]].update(data)
        return int(time.timestamp()), raw

    def contract(self, row, client, vendor, currency, time) -> tuple[str, dict[str, Any] | None]:
        cid = row["contract_id"]
        fields: dict[str, Any] = {"category": row["category"]}
        if "data_classes" in row or "data_classes" in self.mapping.columns.values():
            sep = self.mapping.list_separator
            classes = [c.strip() for c in row.get("data_classes", "").split(sep) if c.strip()]
            fields["data_classes"] = list(dict.fromkeys(classes))
        if row.get("annual_value"):
            fields["annual_value"] = self.money(row, "annual_value", currency)
        if row.get("ends_on"):
            fields["ends_on"] = self.date(row, "ends_on").isoformat()
        before = self.contracts.get(cid)
        if before is None:
            return "contract.signed", {
                "contract_id": cid,
                "client": client,
                "vendor": vendor,
                "data_classes": [],
                **fields,
            }
        if (before["client"], before["vendor"]) != (client, vendor):
            raise RowError(
                "contract_parties",
                f"contract {cid!r} was signed between {before['client']} and "
                f"{before['vendor']}: a row cannot change its parties",
            )
        if time < before["time"]:
            raise RowError("contract_order", f"contract {cid!r}: dated before its signing row")
        changes = {k: v for k, v in fields.items() if before.get(k) != v}
        return "contract.amended", ({"contract_id": cid, **changes} if changes else None)

    def party(self, line: int, row: dict[str, str], role: str) -> str:
        value = row.get(role, "")
        if _SLUG.fullmatch(value):
            return value
        matches = self.directory.match_name(value)
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise RowError("ambiguous_name", f"{role} {value!r} names {', '.join(matches)}")
        slug = name_key(value)
        if not slug:
            raise RowError("schema", f"{role} {value!r} has no letters or digits")
        if value not in self.new_names:
            self.new_names.add(value)
            self.say(line, "note", "new_entity", f"{role} {value!r} is no known entity: id {slug}")
        return slug

    def money(self, row: dict[str, str], name: str, currency: str | None) -> float:
        text = row.get(name, "")
        price = Price.fromstring(text, decimal_separator=self.mapping.decimal_separator)
        if price.amount is None:
            raise RowError("money", f"{name} {text!r} is not an amount")
        if text.lstrip().startswith(("-", "(", "−")) or text.rstrip().endswith(("-", ")")):
            raise RowError("money", f"{name} {text!r} is negative (a credit): not spend")
        if not price.amount > 0:
            raise RowError("money", f"{name} {text!r} must be more than 0")
        symbol = (price.currency or "").strip()
        if symbol in _AMBIGUOUS_SYMBOLS and currency is None:
            raise RowError("currency", f"{name} {text!r}: {symbol} names several currencies")
        code = currency or _SYMBOLS.get(symbol) or (symbol if _ISO_CODE.fullmatch(symbol) else None)
        if symbol and currency and _SYMBOLS.get(symbol, currency) != currency:
            raise RowError("currency", f"{name} {text!r} is not in {currency}")
        amount = price.amount
        if code not in (None, "USD"):
            rate = (self.rates or {}).get(code)
            if rate is None:
                raise RowError(
                    "currency",
                    f"{name} {text!r} is in {code}: money is in US dollars; give --rates "
                    f"with {code} = <US dollars per {code}> to convert it",
                )
            amount = amount * rate
        return float(amount.quantize(Decimal("0.01")))

    def date(self, row: dict[str, str], name: str) -> dt.date:
        text = row.get(name, "")
        fmt = self.mapping.date_format
        try:
            if fmt is not None:
                return dt.datetime.strptime(text, fmt).date()
            if m := _US.fullmatch(text):
                if self.day_first_line is not None:
                    raise RowError(
                        "date",
                        f"{name} {text!r}: this file's slash dates are day-first in places "
                        f"(line {self.day_first_line}); say which with --date-format "
                        "(%m/%d/%Y or %d/%m/%Y)",
                    )
                return dt.date(int(m[3]), int(m[1]), int(m[2]))
            if m := _DOTTED.fullmatch(text):
                return dt.date(int(m[3]), int(m[2]), int(m[1]))
            if len(text) >= 10 and text[4] == "-":
                return dt.date.fromisoformat(text[:10])
        except ValueError:
            pass
        if not text:
            raise RowError("date", f"{name}: empty")
        raise RowError(
            "date", f"{name} {text!r} is not a date (ISO, 12/31/2025, 31.12.2025 or --date-format)"
        )
