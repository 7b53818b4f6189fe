"""The `stakewatch` console command: thin wrappers that parse options and call adapters."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.console import Console

from streams.engine import ConfigError, Engine, load_config

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Stakewatch: conflicts of interest in AI supply chains, as they happen.",
)
err = Console(stderr=True)

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", help="TOML file with the rule set (threshold, severity, classes)."),
]


def _engine(config: Path | None) -> Engine:
    try:
        return Engine(load_config(config))
    except ConfigError as exc:
        err.print(f"[red]bad configuration[/red]: {exc}")
        raise typer.Exit(2) from None


@app.command()
def schema() -> None:
    """Print the JSON Schema of every event type."""
    from streams.events import event_adapter

    sys.stdout.buffer.write(
        orjson.dumps(event_adapter.json_schema(), option=orjson.OPT_INDENT_2) + b"\n"
    )


@app.command()
def backtest(
    file: Annotated[str, typer.Argument(help="NDJSON events; '-' for stdin.")],
    dead_letter: Annotated[
        Path | None, typer.Option("--dead-letter", help="Write rejected lines and reasons here.")
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Replay an event file through the engine; print the alert records it would have fired."""
    from streams.backtest import iter_lines, run_backtest, write_record

    engine = _engine(config)
    try:
        source = sys.stdin.buffer if file == "-" else open(file, "rb")  # noqa: SIM115
    except OSError as exc:
        err.print(f"[red]cannot read {file}[/red]: {exc.strerror}")
        raise typer.Exit(1) from None
    dl = open(dead_letter, "wb") if dead_letter else None  # noqa: SIM115
    out = sys.stdout.buffer
    try:
        summary = run_backtest(engine, iter_lines(source), write_record(out), dl)
    except OSError as exc:
        err.print(f"[red]cannot read {file}[/red]: {exc.strerror}")
        raise typer.Exit(1) from None
    finally:
        out.flush()
        if dl:
            dl.close()
        if source is not sys.stdin.buffer:
            source.close()
    _print_summary(summary.as_dict())


@app.command()
def demo(
    pace: Annotated[float, typer.Option(help="Seconds to pause before each alerting event.")] = 0.6,
) -> None:
    """Play the Scale AI case and show each alert as it fires and resolves."""
    from streams.demo import run_demo

    run_demo(pace=pace)


@app.command()
def bench(
    quick: Annotated[bool, typer.Option("--quick", help="Smaller sizes (CI).")] = False,
    engine: Annotated[bool, typer.Option("--engine", help="Engine figures only.")] = False,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write figures here.")] = None,
) -> None:
    """Measure and print the figures (worker figures arrive with the streaming worker)."""
    from rich.table import Table

    from streams.bench import engine_figures

    out = Console()
    doc = engine_figures(quick, progress=lambda msg: err.print(f"[dim]… {msg}[/dim]"))
    table = Table(title="stakewatch bench" + (" --quick" if quick else ""))
    table.add_column("figure")
    table.add_column("value", justify="right")
    for name, value in doc["figures"].items():
        table.add_row(name, f"{value:,}")
    out.print(table)
    for size, fig in doc["details"]["ownership_event"].items():
        out.print(f"ownership event on {int(size):,} entities: {fig['params']}", highlight=False)
    out.print(f"engine stream: {doc['details']['engine_throughput']['params']}", highlight=False)
    if json_path:
        json_path.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))


def _print_summary(summary: dict) -> None:
    reasons = ", ".join(f"{k} {v}" for k, v in summary["rejected_by_reason"].items()) or "none"
    err.print(
        f"events read {summary['events_read']}, applied {summary['applied']}, "
        f"rejected {summary['rejected']} ({reasons}), alerts {summary['alerts']}",
        highlight=False,
        soft_wrap=True,
    )


def main() -> None:
    app()
