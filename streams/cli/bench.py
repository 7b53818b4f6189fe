"""Measuring commands: ``bench`` (figures) and ``chaos`` (fault campaigns). Both run
code from ``streams.bench``, which nothing else imports."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from streams.cli.common import err

__all__ = ["bench", "chaos"]

#: The benchmark's peers: (module, distribution), both in the ``bench`` extra.
PEERS = (("faust", "faust-streaming"), ("quixstreams", "quixstreams"))


def _missing_peers() -> list[str]:
    """The peers' distributions that are not installed ("X is" / "X and Y are")."""
    import importlib.util

    missing = [dist for module, dist in PEERS if importlib.util.find_spec(module) is None]
    if missing:
        missing[-1] += " are" if len(missing) > 1 else " is"
    return missing


def bench(
    quick: Annotated[bool, typer.Option("--quick", help="Smaller sizes (CI, < 2 min).")] = False,
    engine: Annotated[bool, typer.Option("--engine", help="Engine figures only.")] = False,
    stream: Annotated[
        bool, typer.Option("--stream", help="Stream figures only (worker and peers).")
    ] = False,
    hostile: Annotated[
        bool,
        typer.Option("--hostile", help="Hostile-input figures only (mesh, chain, 400 %+ world)."),
    ] = False,
    broker: Annotated[
        str | None,
        typer.Option(
            "--broker",
            help="kafka://HOST:PORT for the stream figures; default: a private embedded broker.",
            show_default=False,
        ),
    ] = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write figures here.")] = None,
    rebuild_events: Annotated[
        int | None,
        typer.Option(
            "--rebuild-events",
            min=1000,
            help="Only the rebuild figures, replaying this many generated events "
            "(e.g. 10000000; the embedded broker holds them in memory).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Measure throughput, latency, recovery and rebuild figures (docs/performance.md).

    The engine alone, then the worker beside a raw consumer, faust and Quix Streams on one
    broker and one generated stream, alert latency, recovery and rebuild, and hostile
    ownership feeds."""
    import os
    import secrets

    every = not (engine or stream or hostile or rebuild_events)  # no flag: everything
    missing = _missing_peers() if every or stream else []
    if missing:
        err.print(
            "stakewatch bench: the stream figures set the worker beside faust-streaming and "
            f"Quix Streams, and {' and '.join(missing)} not installed. Install the bench "
            "extra — pip install 'stakewatch[bench]', or pip install -e '.[bench]' in a "
            "clone (make test does) — or measure --engine or --hostile alone.",
            highlight=False,
            soft_wrap=True,
            markup=False,
        )
        raise typer.Exit(2)
    from streams.bench.stream import run_bench

    # The bench's workers sign their snapshots (their recovery and rebuild figures need
    # them) with a key only this run knows, unless one is set: they inherit it.
    os.environ.setdefault("STAKEWATCH_SNAPSHOT_KEY", secrets.token_hex(32))
    run_bench(
        quick=quick,
        engine=every or engine,
        stream=every or stream,
        hostile=every or hostile,
        broker=broker,
        json_path=json_path,
        rebuild_events=rebuild_events,
    )


def chaos(
    scenario: Annotated[
        list[str] | None,
        typer.Option(
            "--scenario",
            help="kills, broker-pause, broker-restart, receivers or all; repeatable "
            "(default: kills, or all with --report).",
            show_default=False,
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Stream, kill points and delays.")] = 1,
    events: Annotated[
        int | None,
        typer.Option("--events", min=1000, help="Events (default 100,000; --ci 20,000)."),
    ] = None,
    kills: Annotated[
        int | None, typer.Option("--kills", min=0, help="Worker kills (default 5).")
    ] = None,
    workers: Annotated[int, typer.Option("--workers", min=1, max=2, help="1 or 2.")] = 1,
    ci: Annotated[
        bool, typer.Option("--ci", help="CI sizes: 20k events, shorter faults, fast groups.")
    ] = False,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write results here.")] = None,
    report: Annotated[
        Path | None,
        typer.Option("--report", help="Rewrite the results table in this file (reliability.md)."),
    ] = None,
    work_dir: Annotated[
        Path | None, typer.Option("--work-dir", help="Logs and data (default: a temp dir).")
    ] = None,
) -> None:
    """Break things on purpose and check nothing was lost or delivered twice (exit 1 if so).

    Worker `kill -9`, broker pause and restart, failing receivers, on a private broker."""
    from rich.table import Table

    from streams.bench.chaos import command

    results, _ = command(
        scenarios=scenario or [],
        seed=seed,
        events=events,
        kills=kills,
        workers=workers,
        ci=ci,
        json_path=json_path,
        report=report,
        work_dir=work_dir,
        say=lambda message: err.print(f"[dim]… {message}[/dim]", highlight=False),
    )
    table = Table(title=f"stakewatch chaos (seed {seed})")
    for column in ("fault", "count", "events", "lost", "duplicates", "in doubt", "recovery"):
        table.add_column(column)
    for r in results:
        worst = max(r.recovery, default=None)
        table.add_row(
            r.fault,
            str(r.injected),
            f"{r.events:,}",
            str(r.lost),
            str(r.duplicates),
            str(r.in_doubt),
            "—" if worst is None else f"max {worst:.1f} s",
        )
    Console().print(table)
    for r in results:
        for violation in r.violations:
            err.print(f"[red]{r.scenario}[/red]: {violation}", highlight=False, soft_wrap=True)
    if not all(r.ok for r in results):
        raise typer.Exit(1)
