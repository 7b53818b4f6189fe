"""Commands over files, no broker: ``schema``, ``backtest``, and the offline twins of
GET /v1/explain and POST /v1/what-if (``explain``, ``whatif``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import orjson
import typer

from streams.cli.common import (
    ConfigOpt,
    EntityOpt,
    NowOpt,
    clock_reading,
    config_of,
    engine_of,
    err,
    print_json,
    print_summary,
    say_rejected,
)

if TYPE_CHECKING:
    pass

if TYPE_CHECKING:
    from streams.query import State

__all__ = ["backtest", "explain", "schema", "whatif"]


def schema() -> None:
    """Print the JSON Schema of every event type."""
    from streams.events import event_adapter

    sys.stdout.buffer.write(
        orjson.dumps(event_adapter.json_schema(), option=orjson.OPT_INDENT_2) + b"\n"
    )


def backtest(
    file: Annotated[str, typer.Argument(help="NDJSON events; '-' for stdin.")],
    dead_letter: Annotated[
        Path | None, typer.Option("--dead-letter", help="Write rejected lines and reasons here.")
    ] = None,
    config: ConfigOpt = None,
    now: NowOpt = None,
) -> None:
    """Replay an event file through the engine; print the alert records it would have fired."""
    from streams.backtest import iter_lines, run_backtest, write_record

    engine = engine_of(config)
    read_at = clock_reading(now)
    try:
        source = sys.stdin.buffer if file == "-" else open(file, "rb")  # noqa: SIM115
    except OSError as exc:
        err.print(f"[red]cannot read {file}[/red]: {exc.strerror}")
        raise typer.Exit(1) from None
    dl = open(dead_letter, "wb") if dead_letter else None  # noqa: SIM115
    out = sys.stdout.buffer
    try:
        summary = run_backtest(engine, iter_lines(source), write_record(out), dl, now=read_at)
    except OSError as exc:
        err.print(f"[red]cannot read {file}[/red]: {exc.strerror}")
        raise typer.Exit(1) from None
    finally:
        out.flush()
        if dl:
            dl.close()
        if source is not sys.stdin.buffer:
            source.close()
    print_summary(summary.as_dict())


def _load_state(file: str, config: Path | None, now: str | None) -> State:
    """Apply FILE as backtest does, keeping the evidence explanations cite; each line it
    skipped is said on stderr (line number and reason), as backtest's summary counts them."""
    from streams.query import load_lines

    engine_config = config_of(config)
    read_at = clock_reading(now)
    try:
        with sys.stdin.buffer if file == "-" else open(file, "rb") as source:
            state = load_lines(source, engine_config, now=read_at)
    except OSError as exc:
        err.print(f"[red]cannot read {file}[/red]: {exc.strerror}")
        raise typer.Exit(1) from None
    for number, rejection in state.skipped:
        say_rejected(file, number, rejection)
    if state.rejected > len(state.skipped):
        err.print(f"… and {state.rejected - len(state.skipped)} more", highlight=False)
    if state.rejected:
        err.print(
            f"skipped {state.rejected} of {state.rejected + state.applied} lines of {file}",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
    return state


def explain(
    file: Annotated[str, typer.Argument(help="NDJSON events; '-' for stdin.")],
    client: EntityOpt,
    vendor: EntityOpt,
    rival: EntityOpt,
    config: ConfigOpt = None,
    now: NowOpt = None,
) -> None:
    """Why (client, vendor, rival) is a conflict after FILE, or why not (as GET /v1/explain)."""
    from streams.query import SLUG, NotFound
    from streams.query import explain as run_explain

    for name, value in (("--client", client), ("--vendor", vendor), ("--rival", rival)):
        if not SLUG.match(value):
            err.print(f"[red]bad option[/red] {name}: {value!r} is not an entity id")
            raise typer.Exit(2)
    state = _load_state(file, config, now)
    try:
        doc = run_explain(state.engine, state.provenance, client, vendor, rival)
    except NotFound as exc:
        err.print(f"[red]not found[/red]: {exc}", highlight=False)
        raise typer.Exit(1) from None
    print_json(doc)


def whatif(
    file: Annotated[str, typer.Argument(help="NDJSON events: the state to start from.")],
    hypothetical: Annotated[
        Path, typer.Argument(help="NDJSON hypothetical events (id, source, time optional).")
    ],
    config: ConfigOpt = None,
    now: NowOpt = None,
) -> None:
    """What HYPOTHETICAL events would open, change and close after FILE (as POST /v1/what-if).

    An event's time defaults to FILE's watermark."""
    from streams.query import BadHypothesis, what_if
    from streams.query.offline import read_hypotheses

    state = _load_state(file, config, now)
    try:
        with open(hypothetical, "rb") as fh:
            events, numbers = read_hypotheses(fh)
        doc = what_if(state.engine, events)
    except OSError as exc:
        err.print(f"[red]cannot read {hypothetical}[/red]: {exc.strerror}")
        raise typer.Exit(1) from None
    except BadHypothesis as exc:
        where = f"line {numbers[exc.index]}: " if exc.index is not None else ""
        err.print(f"[red]bad hypothesis[/red] {where}{exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    print_json(doc)
