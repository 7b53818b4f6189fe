"""The `stakewatch` console command: thin wrappers that parse options and call adapters.

One module per concern, each command a plain function registered here, in help order:
``offline`` (files: schema, backtest, explain, whatif), ``worker`` (worker, demo),
``kafka`` (broker, topics, replay, alerts, dead-letters, rebuild), ``bench`` (bench,
chaos), and ``import`` (streams/imports/cli.py); ``common`` holds the options and the
one-line failures they share, ``serve`` what ``stakewatch worker`` runs. Command modules
import their adapters inside the command, so ``stakewatch --version`` loads none of them.
"""

from __future__ import annotations

from typing import Annotated

import typer

from streams.cli import bench, kafka, offline, worker
from streams.imports.cli import import_app

__all__ = ["app", "main"]

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    # Markdown: a docstring paragraph wrapped at the source's line length reads as one
    # paragraph, re-wrapped to the terminal, instead of breaking mid-sentence.
    rich_markup_mode="markdown",
    help="Stakewatch: conflicts of interest in AI supply chains, as they happen.",
)


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"stakewatch {version('stakewatch')}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Stakewatch: conflicts of interest in AI supply chains, as they happen."""


app.command()(offline.schema)
app.command()(offline.backtest)
app.command()(worker.demo)
app.command()(bench.bench)
app.command()(offline.explain)
app.command()(offline.whatif)
app.command("broker")(kafka.broker_cmd)
topics_app = typer.Typer(no_args_is_help=True, help="The Kafka topics Stakewatch uses.")
app.add_typer(topics_app, name="topics")
topics_app.command("create")(kafka.topics_create)
app.add_typer(import_app, name="import")
app.command()(kafka.replay)
app.command()(kafka.alerts)
app.command("dead-letters")(kafka.dead_letters)
app.command()(worker.worker)
app.command()(kafka.rebuild)
app.command()(bench.chaos)


def main() -> None:
    app()
