"""Commands on a broker: the embedded ``broker``, ``topics create``, ``replay``,
``alerts``, ``dead-letters`` and ``rebuild``."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console

from streams.cli.common import (
    BrokerOpt,
    EmbeddedOpt,
    err,
    run,
    say_rejected,
    session,
    settings_of,
    snapshot_key_of,
    time_option,
)

__all__ = ["alerts", "broker_cmd", "dead_letters", "rebuild", "replay", "topics_create"]


def broker_cmd(
    listen: Annotated[
        str, typer.Option("--listen", help="HOST:PORT for the embedded broker to listen on.")
    ] = "127.0.0.1:9092",
) -> None:
    """Run the embedded broker (Tansu) in the foreground until Ctrl-C or SIGTERM.

    Other commands on the same STAKEWATCH_DATA_DIR find it (broker.json) instead of starting
    their own. At start it creates the topics and refills them from the data dir's archive.
    """
    from streams.kafka.broker import parse_broker_url
    from streams.kafka.connect import Connection, serve_broker

    settings = settings_of()
    try:
        if "," in parse_broker_url(listen, setting="--listen"):
            raise ValueError(f"--listen={listen!r}: the embedded broker listens on one address")
    except ValueError as exc:
        err.print(f"[red]bad setting[/red] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    if settings.broker:
        err.print(f"note: STAKEWATCH_BROKER is set, so other commands use {settings.broker}")

    def ready(conn: Connection) -> None:
        refill = conn.refill
        err.print(
            f"embedded broker on kafka://{conn.bootstrap} (pid {conn.pid}), data dir "
            f"{settings.data_dir}; refilled {refill.records if refill else 0} archived records; "
            "Ctrl-C to stop",
            highlight=False,
            soft_wrap=True,
        )

    run(serve_broker(settings, listen, on_ready=ready))
    err.print("embedded broker stopped")


def topics_create(
    partitions: Annotated[
        int | None,
        typer.Option(
            "--partitions",
            min=1,
            help="Partitions of the input topics [default: 8, or what the embedded data dir "
            "recorded].",
            show_default=False,
        ),
    ] = None,
    broker: BrokerOpt = None,
    embedded: EmbeddedOpt = False,
) -> None:
    """Create the topics (idempotent): print which existed and which were created."""
    from streams.kafka.connect import create_topics

    settings = settings_of(broker)
    created, existing = run(create_topics(settings, partitions, private_ok=embedded, probe=True))
    out = Console(highlight=False)
    for name in existing:
        out.print(f"exists  {name}")
    for name in created:
        out.print(f"created {name}")
    out.print(f"{len(created)} created, {len(existing)} already existed")


def replay(
    file: Annotated[str, typer.Argument(help="NDJSON events; '-' for stdin.")],
    rate: Annotated[
        float | None,
        typer.Option("--rate", min=0.001, help="Events per second (default: as fast as possible)."),
    ] = None,
    json_summary: Annotated[
        bool, typer.Option("--json", help="Print the counts as one JSON object.")
    ] = False,
    no_deliver: Annotated[
        bool,
        typer.Option(
            "--no-deliver",
            help="Load history without paging: the alerts these events cause are recorded "
            "as told and sent to no receiver.",
        ),
    ] = False,
    dead_letter: Annotated[
        Path | None,
        typer.Option("--dead-letter", help="Also write rejected lines and reasons here."),
    ] = None,
    mode: Annotated[
        str,
        typer.Option(
            "--mode",
            help="CloudEvents content mode of the records: structured (the line as the value) "
            "or binary (attributes as ce_ headers, data as the value).",
        ),
    ] = "structured",
    broker: BrokerOpt = None,
    embedded: EmbeddedOpt = False,
) -> None:
    """Publish NDJSON events to their topics, keyed and timestamped with event time.

    Lines that do not decode go to the dead-letter topic with their original bytes and the
    reason, and each is named on stderr (`FILE:LINE: code: detail`). Checks that need state
    (unknown contract, duplicates) are the worker's: `stakewatch dead-letters` shows those
    too. Prints the counts when done; a progress bar on a terminal. With `--no-deliver`
    every event carries the header `stakewatch-deliver: no` (docs/alerts.md).
    """
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeElapsedColumn

    from streams.backtest import dead_letter_line
    from streams.kafka.replay import MODES, format_summary
    from streams.kafka.replay import replay as run_replay

    if mode not in MODES:
        err.print(f"[red]bad option[/red] --mode: one of {', '.join(MODES)}, got {mode!r}")
        raise typer.Exit(2)

    settings = settings_of(broker)
    try:
        source = sys.stdin.buffer if file == "-" else open(file, "rb")  # noqa: SIM115
    except OSError as exc:
        err.print(f"[red]cannot read {file}[/red]: {exc.strerror}")
        raise typer.Exit(1) from None
    dl = open(dead_letter, "wb") if dead_letter else None  # noqa: SIM115

    def rejected(number: int, raw: bytes, rejection: Any) -> None:
        say_rejected(file, number, rejection)
        if dl is not None:
            dl.write(dead_letter_line(raw, rejection, line=number))

    total = None if file == "-" else os.fstat(source.fileno()).st_size
    bar = Progress(
        "replay", BarColumn(), DownloadColumn(), TimeElapsedColumn(), console=err, transient=True
    )
    task = bar.add_task("replay", total=total)

    async def go() -> Any:
        archived = "; the events are archived there and reach the next broker started on it"
        async with session(settings, embedded, archived) as conn:
            return await run_replay(
                conn,
                source,
                source_name=None if file == "-" else file,
                rate=rate,
                progress=lambda n: bar.advance(task, n),
                deliver=not no_deliver,
                on_rejected=rejected,
                mode=mode,
            )

    try:
        with bar if err.is_terminal else contextlib.nullcontext():
            summary = run(go())
    finally:
        if source is not sys.stdin.buffer:
            source.close()
        if dl is not None:
            dl.close()
    if json_summary:
        sys.stdout.buffer.write(orjson.dumps(summary.as_dict()) + b"\n")
    else:
        Console(highlight=False).print(format_summary(summary))


def alerts(
    from_beginning: Annotated[
        bool, typer.Option("--from-beginning", help="Start at the first alert record.")
    ] = False,
    follow: Annotated[bool, typer.Option("--follow", help="Keep printing until Ctrl-C.")] = False,
    until_idle: Annotated[
        float | None,
        typer.Option(
            "--until-idle", min=0.0, metavar="SECONDS", help="Exit after SECONDS with no record."
        ),
    ] = None,
    broker: BrokerOpt = None,
    embedded: EmbeddedOpt = False,
) -> None:
    """Print alert records from the alerts topic, one JSON object per line.

    Without `--from-beginning` only records that arrive from now on are printed. With neither
    `--follow` nor `--until-idle`: `alerts` follows (like tail -f) and `alerts
    --from-beginning` prints what is there and exits after 2 s with nothing new.
    """
    from streams.kafka.tail import tail_alerts

    if follow and until_idle is not None:
        err.print("[red]bad options[/red]: --follow and --until-idle exclude each other")
        raise typer.Exit(2)
    if until_idle is None and not follow:
        until_idle = 2.0 if from_beginning else None
    settings = settings_of(broker)
    out = sys.stdout.buffer

    async def go() -> int:
        nothing = ", so it has no alerts: run `stakewatch broker` and a worker first"
        async with session(settings, embedded, nothing) as conn:
            return await tail_alerts(
                conn.bootstrap,
                conn.names.alerts,
                out,
                from_beginning=from_beginning,
                idle=until_idle,
                handle_signals=True,
                client=conn.client_options,
            )

    try:
        run(go())
    except BrokenPipeError:  # `stakewatch alerts | head`: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def dead_letters(
    follow: Annotated[bool, typer.Option("--follow", help="Keep printing until Ctrl-C.")] = False,
    broker: BrokerOpt = None,
    embedded: EmbeddedOpt = False,
) -> None:
    """Print the rejected records of the dead-letter topic, one JSON object per line.

    Each has the `reason` and its `code`, where the record came from (`source_topic`,
    `source_partition`, `source_offset` for the worker's; `source_line`, `source_file` for
    replay's) and the `original` bytes as text (`original_base64` when not UTF-8): the shape
    `backtest --dead-letter` writes. Prints what is there and exits after 2 s with nothing
    new, or follows with `--follow`.
    """
    from streams.kafka.headers import dead_letter_json
    from streams.kafka.tail import tail_alerts

    settings = settings_of(broker)
    out = sys.stdout.buffer

    async def go() -> int:
        archived = "; it holds the dead letters archived on that data dir"
        async with session(settings, embedded, archived) as conn:
            return await tail_alerts(
                conn.bootstrap,
                conn.names.dead_letter,
                out,
                from_beginning=True,
                idle=None if follow else 2.0,
                handle_signals=True,
                client=conn.client_options,
                render=lambda r: dead_letter_json(r.value, r.headers),
            )

    try:
        run(go())
    except BrokenPipeError:  # `stakewatch dead-letters | head`: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def rebuild(
    broker: BrokerOpt = None,
    since: Annotated[
        str | None,
        typer.Option("--from", help="RFC 3339 time: apply only events stamped at/after it."),
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Write the reset marker even though workers look alive (see above)."
        ),
    ] = False,
    embedded: EmbeddedOpt = False,
) -> None:
    """Rebuild all state from the event topics at the workers' next start.

    Stop the workers first: a running worker's next snapshot (at the latest the one it
    writes when it stops) would supersede the reset marker, and nothing would be rebuilt.
    So this refuses while a worker of the group is alive (this host's workers, and on an
    external broker the group's members), and checks again after writing the marker.
    `--force` writes it anyway (for a member the broker still lists after it died).
    """
    from streams.kafka.rebuild import live_workers, request_rebuild

    when = None if since is None else time_option("--from", since)
    settings = settings_of(broker)
    key = snapshot_key_of(settings)

    async def go() -> int:
        async with session(settings, embedded) as conn:
            if conn.owner:  # snapshots are not archived: a marker here would vanish with it
                err.print(
                    "nothing to rebuild here: snapshots live only in a running broker, so the "
                    "next worker on this data dir replays the archive from the start anyway"
                    + ("; for --from, start `stakewatch broker` first" if since else ""),
                    highlight=False,
                    soft_wrap=True,
                    markup=False,
                )
                return 1 if since else 0

            async def alive() -> list[str]:
                return await live_workers(
                    conn.bootstrap,
                    settings.group_id,
                    embedded=conn.embedded,
                    data_dir=settings.data_dir.resolve(),
                    client=conn.client_options,
                )

            running = [] if force else await alive()
            if running:
                err.print(
                    f"not rebuilding: {len(running)} worker(s) of group {settings.group_id} "
                    f"look alive ({'; '.join(running)}). Stop them first, then rebuild, then "
                    "start them (their next snapshot would supersede the reset marker).",
                    highlight=False,
                    soft_wrap=True,
                    markup=False,
                )
                return 1
            marker = await request_rebuild(
                conn.bootstrap, conn.names, when, conn.client_options, key
            )
            late = [] if force else await alive()
            if late:
                err.print(
                    f"a worker started while the reset marker was written ({'; '.join(late)}): "
                    "its snapshots may supersede it. Stop it and run rebuild again.",
                    highlight=False,
                    soft_wrap=True,
                    markup=False,
                )
                return 1
            typer.echo(
                f"rebuild requested ({marker.snapshot_id}, leases {sorted(marker.leases)}"
                + (f", from {since}" if since else "")
                + "): start the workers; they replay the event topics and reconcile alerts."
            )
            return 0

    raise typer.Exit(run(go()))
