"""`stakewatch import bods|csv`: outside data in, as events on stdout or on the topics.

Thin: read the input, load the entities to land on, call the converter, then print or
publish the events, write the report and say the summary on stderr. Exit status: 0 when
every input was valid, 1 when any was not (or a file could not be read), 2 for bad options.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = ["import_app"]

import_app = typer.Typer(
    no_args_is_help=True,
    rich_markup_mode="markdown",
    help="Turn outside data into events: BODS ownership registers, procurement and AP CSV.",
)

ReportOpt = Annotated[
    Path | None,
    typer.Option(
        "--report", help="Write one JSON line per input that became no event (or a note)."
    ),
]
EntitiesOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--entities",
        help="NDJSON entity.registered events: imported records whose identifier (or, for "
        "CSV, name) matches land on those ids. Repeatable.",
    ),
]
PublishOpt = Annotated[
    bool,
    typer.Option(
        "--publish",
        help="Publish the events to their topics (as `stakewatch replay`) instead of printing "
        "them; the entities registered on the reference topic count as known.",
    ),
]
BrokerOpt = Annotated[
    str | None,
    typer.Option("--broker", help="kafka://HOST:PORT, with --publish.", show_default=False),
]
EmbeddedOpt = Annotated[
    bool, typer.Option("--embedded", help="With --publish: as for `stakewatch replay`.")
]
SourceOpt = Annotated[
    str | None,
    typer.Option("--source", help="The events' CloudEvents source.", show_default=False),
]

Converted = tuple[list[bytes], list[dict[str, Any]], int]  # events, report, invalid inputs


def _err(text: str) -> None:
    from streams.cli.common import err

    err.print(text, highlight=False, soft_wrap=True, markup=False)


def _read(name: str) -> bytes:
    try:
        if name == "-":
            return sys.stdin.buffer.read()
        with open(name, "rb") as fh:
            return fh.read()
    except OSError as exc:
        _err(f"cannot read {name}: {exc.strerror}")
        raise typer.Exit(1) from None


def _directory(entities: list[Path] | None):
    from streams.imports.identity import Directory
    from streams.imports.output import read_entities

    directory = Directory()
    for path in entities or ():
        try:
            problems = read_entities(directory, path)
        except OSError as exc:
            _err(f"cannot read {path}: {exc.strerror}")
            raise typer.Exit(1) from None
        for line in problems:
            _err(f"{line} (not used)")
    return directory


def _finish(
    what: str,
    convert: Callable[[Any], Converted],
    directory: Any,
    *,
    publish: bool,
    broker: str | None,
    embedded: bool,
    report: Path | None,
) -> None:
    """Convert (after the reference topic's entities joined `directory`, when publishing),
    print or publish, write the report, say the summary, exit 1 on invalid input."""
    from streams.imports.output import summary_line, write_report

    if publish:
        from streams.cli.common import run, session, settings_of
        from streams.imports.output import known_from_topic
        from streams.imports.output import publish as publish_events

        settings = settings_of(broker)

        async def go() -> tuple[Converted, int, int]:
            archived = "; the events are archived there and reach the next broker started on it"
            async with session(settings, embedded, archived) as conn:
                loaded = await known_from_topic(conn, directory)
                converted = convert(directory)
                summary = await publish_events(conn, converted[0], f"import {what}")
                return converted, loaded, sum(summary.published.values())

        (events, entries, invalid), loaded, sent = run(go())
        _err(f"published {sent} events; {loaded} entities were known from the reference topic")
    else:
        events, entries, invalid = convert(directory)
        out = sys.stdout.buffer
        for raw in events:
            out.write(raw + b"\n")
        out.flush()
    write_report(report, entries)
    _err(summary_line(what, events, entries))
    raise typer.Exit(1 if invalid else 0)


@import_app.command("bods")
def bods(
    files: Annotated[
        list[str], typer.Argument(help="BODS 0.4 JSON arrays or JSON Lines; '-' for stdin.")
    ],
    report: ReportOpt = None,
    entities: EntitiesOpt = None,
    source: SourceOpt = None,
    publish: PublishOpt = False,
    broker: BrokerOpt = None,
    embedded: EmbeddedOpt = False,
) -> None:
    """BODS 0.4 statements → entity.registered and ownership.stake events (docs/ingest.md).

    Every statement is checked against the BODS 0.4 JSON Schema first; each one that
    becomes no event is reported with its reason (`--report`, and a summary on stderr).
    Prints CloudEvents NDJSON on stdout, or publishes with `--publish`. Exit 1 when any
    input was invalid.
    """
    from streams.imports.bods import convert
    from streams.imports.bods_validate import read_statements

    statements, unreadable = [], []
    for name in files:
        found, bad = read_statements(name, _read(name))
        statements += found
        unreadable += bad

    def run(directory: Any) -> Converted:
        result = convert(statements, directory, source or "/import/bods")
        return result.events, unreadable + result.report, result.invalid + len(unreadable)

    _finish(
        f"{len(statements)} statements from {', '.join(files)}",
        run,
        _directory(entities),
        publish=publish,
        broker=broker,
        embedded=embedded,
        report=report,
    )


@import_app.command("csv")
def csv_cmd(
    kind: Annotated[str, typer.Argument(help="contracts or spend.", metavar="contracts|spend")],
    file: Annotated[str, typer.Argument(help="The CSV export; '-' for stdin.")],
    map_: Annotated[
        str | None,
        typer.Option(
            "--map",
            help="Column mapping, `Column=field,...` (fields: contract_id, client, vendor, "
            "category, data_classes, annual_value, ends_on, amount, currency, time).",
            show_default=False,
        ),
    ] = None,
    mapping: Annotated[
        Path | None,
        typer.Option("--mapping", help="TOML mapping: [columns], [constants], date_format, …"),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="field=value for every row (e.g. client=openai). Repeatable."),
    ] = None,
    date_format: Annotated[
        str | None,
        typer.Option("--date-format", help="strptime format of the dates, e.g. %d/%m/%Y."),
    ] = None,
    decimal_separator: Annotated[
        str | None,
        typer.Option("--decimal-separator", help="'.' or ',' when amounts are ambiguous."),
    ] = None,
    rates: Annotated[
        Path | None,
        typer.Option("--rates", help="TOML `CODE = US dollars per unit` to convert non-USD."),
    ] = None,
    delimiter: Annotated[
        str | None, typer.Option("--delimiter", help="Field delimiter (default: sniffed).")
    ] = None,
    report: ReportOpt = None,
    entities: EntitiesOpt = None,
    source: SourceOpt = None,
    publish: PublishOpt = False,
    broker: BrokerOpt = None,
    embedded: EmbeddedOpt = False,
) -> None:
    """A procurement (contracts) or AP (spend) CSV export → events, through a column mapping.

    Bad rows are reported with their line number and become no event; the exit status is 1
    when any row was bad. Re-importing the same rows is a no-op (ids are a digest of the
    mapped row).
    """
    from streams.imports.csv_rows import KINDS, Mapping, MappingError, convert_csv, read_rates

    try:
        if kind not in KINDS:
            raise MappingError(f"kind: contracts or spend, got {kind!r}")
        chosen = Mapping.from_toml(mapping) if mapping else Mapping()
        if map_:
            chosen.columns.update(Mapping.parse(map_))
        for item in set_ or ():
            name, sep, value = item.partition("=")
            if not sep or not name.strip():
                raise MappingError(f"--set: {item!r} is not field=value")
            chosen.constants[name.strip()] = value.strip()
        if date_format:
            chosen.date_format = date_format
        if decimal_separator:
            chosen.decimal_separator = decimal_separator
        table = read_rates(rates) if rates else None
    except MappingError as exc:
        _err(f"bad option: {exc}")
        raise typer.Exit(2) from None
    data = _read(file)

    def run(directory: Any) -> Converted:
        try:
            result = convert_csv(
                kind,
                data,
                chosen,
                directory,
                name=file,
                source=source,
                rates=table,
                delimiter=delimiter,
            )
        except MappingError as exc:
            _err(f"bad mapping: {exc}")
            raise typer.Exit(2) from None
        return result.events, result.report, result.invalid

    _finish(
        f"{kind} rows from {file}",
        run,
        _directory(entities),
        publish=publish,
        broker=broker,
        embedded=embedded,
        report=report,
    )
