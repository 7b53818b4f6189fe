"""The `stakewatch` console command: thin wrappers that parse options and call adapters."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import orjson
import typer
from rich.console import Console

from streams.engine import ConfigError, Engine, load_config

if TYPE_CHECKING:
    from streams.settings import Settings

_T = TypeVar("_T")

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    # Markdown: a docstring paragraph wrapped at the source's line length reads as one
    # paragraph, re-wrapped to the terminal, instead of breaking mid-sentence.
    rich_markup_mode="markdown",
    help="Stakewatch: conflicts of interest in AI supply chains, as they happen.",
)
err = Console(stderr=True)


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


ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", help="TOML file with the rule set (threshold, severity, classes)."),
]


def _engine(config: Path | None) -> Engine:
    return Engine(_config(config))


NowOpt = Annotated[
    str | None,
    typer.Option(
        "--now",
        help="RFC 3339 time the file counts as read at: an event more than a day after it "
        "is rejected as `future`. Default: the clock now.",
        show_default=False,
    ),
]


def _time_option(name: str, value: str):
    """An RFC 3339 option value with its offset, or exit 2 naming the option."""
    import datetime as dt

    try:
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        err.print(f"[red]bad setting[/red]: {name}: {value!r} is not an RFC 3339 time")
        raise typer.Exit(2) from None
    if when.tzinfo is None:
        err.print(f"[red]bad setting[/red]: {name}: {value!r} has no UTC offset")
        raise typer.Exit(2)
    return when


def _read_at(now: str | None) -> int:
    """The clock reading an offline command judges `future` by, in microseconds: --now, or
    the wall clock (the one place it enters, SPEC v2 §2)."""
    import time

    if now is None:
        return time.time_ns() // 1000
    return int(_time_option("--now", now).timestamp() * 1_000_000)


BrokerOpt = Annotated[
    str | None,
    typer.Option(
        "--broker",
        help="kafka://HOST:PORT of a Kafka broker; default: STAKEWATCH_BROKER, else the "
        "embedded broker (started if none runs on STAKEWATCH_DATA_DIR).",
        show_default=False,
    ),
]
EmbeddedOpt = Annotated[
    bool,
    typer.Option(
        "--embedded",
        help="Use the data dir's embedded broker, starting a private one for this command if "
        "none runs, even while a worker or broker runs elsewhere (refused otherwise).",
    ),
]


@contextlib.asynccontextmanager
async def _session(settings: Settings, embedded: bool, private: str = "") -> Any:
    """``broker_session`` for a command: an external broker must answer, a private embedded
    broker is refused while something runs elsewhere (``--embedded`` allows it), and one
    started for this command is said so (``private``: what that means for the command)."""
    from streams.connect import broker_session

    async with broker_session(settings, private_ok=embedded, probe=True) as conn:
        if conn.owner:
            err.print(
                f"note: no broker was running on data dir {settings.data_dir}, so this command "
                f"started a private embedded broker that stops when it ends{private}",
                highlight=False,
                soft_wrap=True,
            )
        yield conn


def _settings(broker: str | None = None) -> Settings:
    """Settings with CLI overrides; a bad one exits 2 with one line naming it."""
    from streams.broker import parse_broker_url
    from streams.settings import SettingsError, load_settings

    try:
        if broker is not None:
            parse_broker_url(broker, setting="--broker")
        return load_settings(broker=broker)
    except (SettingsError, ValueError) as exc:
        name, _, rest = str(exc).partition(": ")
        message = rest if rest.startswith(f"{name}=") else str(exc)  # no "X: X='v': ..."
        err.print(message, highlight=False, soft_wrap=True, markup=False)
        raise typer.Exit(2) from None


def _snapshot_key(settings: Settings) -> Any:
    """The workers' snapshot key for these settings; a bad key file exits 2 naming it."""
    from streams.agents.snapshot_key import snapshot_key
    from streams.settings import SettingsError

    try:
        return snapshot_key(settings)
    except SettingsError as exc:
        err.print(str(exc), highlight=False, soft_wrap=True, markup=False)
        raise typer.Exit(2) from None


def _run(coro: Coroutine[Any, Any, _T]) -> _T:
    """Run a command's coroutine; expected failures become one line and exit code 1 (2 for
    settings); Ctrl-C exits 130 and SIGTERM 143, both after the cleanup ran."""
    from aiokafka.errors import KafkaError

    from streams.broker import BrokerError
    from streams.publish import TopicMissingError
    from streams.settings import SettingsError
    from streams.signals import Terminated, terminable
    from streams.topics import TopicMismatchError

    try:
        return asyncio.run(terminable(coro))
    except SettingsError as exc:
        err.print(str(exc), highlight=False, soft_wrap=True, markup=False)
        raise typer.Exit(2) from None
    except BrokenPipeError:
        raise  # the reader went away (`| head`): the command decides
    except (BrokerError, TopicMissingError, TopicMismatchError, KafkaError, OSError) as exc:
        text = str(exc) or type(exc).__name__
        err.print(f"error: {text}", highlight=False, soft_wrap=True, markup=False)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        err.print("interrupted")
        raise typer.Exit(130) from None
    except Terminated:
        err.print("terminated")
        raise typer.Exit(143) from None


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
    now: NowOpt = None,
) -> None:
    """Replay an event file through the engine; print the alert records it would have fired."""
    from streams.backtest import iter_lines, run_backtest, write_record

    engine = _engine(config)
    read_at = _read_at(now)
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
    _print_summary(summary.as_dict())


@app.command()
def demo(
    pace: Annotated[
        float, typer.Option(help="Seconds to pause before each stake and termination.")
    ] = 0.6,
    once: Annotated[
        bool, typer.Option("--once", help="Exit after the scenario instead of watching.")
    ] = False,
) -> None:
    """Embedded broker + worker; replay the Scale AI case and show alerts as they fire."""
    import asyncio
    import os

    from streams.demo import run_demo
    from streams.logging import configure_logging

    # The panels are the demo's output; worker logs only when something is wrong.
    configure_logging(os.environ.get("STAKEWATCH_LOG_LEVEL", "WARNING"))
    asyncio.run(run_demo(pace=pace, follow=not once))


@app.command()
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
) -> None:
    """Measure throughput, latency, recovery and rebuild figures (docs/performance.md).

    The engine alone, then the worker beside a raw consumer, faust and Quix Streams on one
    broker and one generated stream, alert latency, recovery and rebuild, and hostile
    ownership feeds."""
    import os
    import secrets

    from streams.bench_stream import run_bench

    # The bench's workers sign their snapshots (their recovery and rebuild figures need
    # them) with a key only this run knows, unless one is set: they inherit it.
    os.environ.setdefault("STAKEWATCH_SNAPSHOT_KEY", secrets.token_hex(32))
    every = not (engine or stream or hostile)  # no flag: everything
    run_bench(
        quick=quick,
        engine=every or engine,
        stream=every or stream,
        hostile=every or hostile,
        broker=broker,
        json_path=json_path,
    )


# -- questions over a file: the offline twins of GET /v1/explain and POST /v1/what-if ----


def _load_state(file: str, config: Path | None, now: str | None):
    """Apply FILE as backtest does, keeping the evidence explanations cite; each line it
    skipped is said on stderr (line number and reason), as backtest's summary counts them."""
    from streams.query import load_lines

    engine_config = _config(config)
    read_at = _read_at(now)
    try:
        with sys.stdin.buffer if file == "-" else open(file, "rb") as source:
            state = load_lines(source, engine_config, now=read_at)
    except OSError as exc:
        err.print(f"[red]cannot read {file}[/red]: {exc.strerror}")
        raise typer.Exit(1) from None
    for number, rejection in state.skipped:
        _say_rejected(file, number, rejection)
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


def _say_rejected(file: str, number: int, rejection: object) -> None:
    """One line per rejected input line: ``FILE:LINE: code: detail`` (as compilers do, so
    editors and terminals jump to it)."""
    err.print(f"{file}:{number}: {rejection}", highlight=False, soft_wrap=True, markup=False)


def _print_json(doc: Any) -> None:
    sys.stdout.buffer.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n")


EntityOpt = Annotated[str, typer.Option(help="Entity id.", show_default=False)]


@app.command()
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
    _print_json(doc)


@app.command()
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
    _print_json(doc)


# -- Kafka: embedded broker, topics, replay, alerts ---------------------------------------


@app.command("broker")
def broker_cmd(
    listen: Annotated[
        str, typer.Option("--listen", help="HOST:PORT for the embedded broker to listen on.")
    ] = "127.0.0.1:9092",
) -> None:
    """Run the embedded broker (Tansu) in the foreground until Ctrl-C or SIGTERM.

    Other commands on the same STAKEWATCH_DATA_DIR find it (broker.json) instead of starting
    their own. At start it creates the topics and refills them from the data dir's archive.
    """
    from streams.broker import parse_broker_url
    from streams.connect import Connection, serve_broker

    settings = _settings()
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

    _run(serve_broker(settings, listen, on_ready=ready))
    err.print("embedded broker stopped")


topics_app = typer.Typer(no_args_is_help=True, help="The Kafka topics Stakewatch uses.")
app.add_typer(topics_app, name="topics")


def _import_app() -> typer.Typer:
    from streams.imports.cli import import_app

    return import_app


app.add_typer(_import_app(), name="import")


@topics_app.command("create")
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
    from streams.connect import create_topics

    settings = _settings(broker)
    created, existing = _run(create_topics(settings, partitions, private_ok=embedded, probe=True))
    out = Console(highlight=False)
    for name in existing:
        out.print(f"exists  {name}")
    for name in created:
        out.print(f"created {name}")
    out.print(f"{len(created)} created, {len(existing)} already existed")


@app.command()
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
    from streams.replay import MODES, format_summary
    from streams.replay import replay as run_replay

    if mode not in MODES:
        err.print(f"[red]bad option[/red] --mode: one of {', '.join(MODES)}, got {mode!r}")
        raise typer.Exit(2)
    settings = _settings(broker)
    try:
        source = sys.stdin.buffer if file == "-" else open(file, "rb")  # noqa: SIM115
    except OSError as exc:
        err.print(f"[red]cannot read {file}[/red]: {exc.strerror}")
        raise typer.Exit(1) from None
    dl = open(dead_letter, "wb") if dead_letter else None  # noqa: SIM115

    def rejected(number: int, raw: bytes, rejection: Any) -> None:
        _say_rejected(file, number, rejection)
        if dl is not None:
            dl.write(dead_letter_line(raw, rejection, line=number))

    total = None if file == "-" else os.fstat(source.fileno()).st_size
    bar = Progress(
        "replay", BarColumn(), DownloadColumn(), TimeElapsedColumn(), console=err, transient=True
    )
    task = bar.add_task("replay", total=total)

    async def go() -> Any:
        archived = "; the events are archived there and reach the next broker started on it"
        async with _session(settings, embedded, archived) as conn:
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
            summary = _run(go())
    finally:
        if source is not sys.stdin.buffer:
            source.close()
        if dl is not None:
            dl.close()
    if json_summary:
        sys.stdout.buffer.write(orjson.dumps(summary.as_dict()) + b"\n")
    else:
        Console(highlight=False).print(format_summary(summary))


@app.command()
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
    from streams.alerts_tail import tail_alerts

    if follow and until_idle is not None:
        err.print("[red]bad options[/red]: --follow and --until-idle exclude each other")
        raise typer.Exit(2)
    if until_idle is None and not follow:
        until_idle = 2.0 if from_beginning else None
    settings = _settings(broker)
    out = sys.stdout.buffer

    async def go() -> int:
        nothing = ", so it has no alerts: run `stakewatch broker` and a worker first"
        async with _session(settings, embedded, nothing) as conn:
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
        _run(go())
    except BrokenPipeError:  # `stakewatch alerts | head`: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


@app.command("dead-letters")
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
    from streams.alerts_tail import tail_alerts
    from streams.deadletter import dead_letter_json

    settings = _settings(broker)
    out = sys.stdout.buffer

    async def go() -> int:
        archived = "; it holds the dead letters archived on that data dir"
        async with _session(settings, embedded, archived) as conn:
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
        _run(go())
    except BrokenPipeError:  # `stakewatch dead-letters | head`: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


@app.command()
def worker(
    broker: Annotated[
        str | None, typer.Option("--broker", help="kafka://HOST:PORT (else STAKEWATCH_BROKER).")
    ] = None,
    web_port: Annotated[
        int | None, typer.Option("--web-port", help="Port for /metrics, /healthz, /v1.")
    ] = None,
    config: ConfigOpt = None,
    embedded: EmbeddedOpt = False,
) -> None:
    """Run the stream worker: input topics → engine → alerts; stops cleanly on SIGTERM.

    An external broker that does not answer is waited for (retrying with a growing pause,
    each try logged); a worker started before its broker simply starts late.
    """
    from streams.agents.worker_cli import run_worker

    code = run_worker(broker=broker, web_port=web_port, config=_config(config), embedded=embedded)
    raise typer.Exit(code)


@app.command()
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
    from streams.rebuild import live_workers, request_rebuild

    when = None if since is None else _time_option("--from", since)
    settings = _settings(broker)
    key = _snapshot_key(settings)

    async def go() -> int:
        async with _session(settings, embedded) as conn:
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

    raise typer.Exit(_run(go()))


@app.command()
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

    from streams.chaos import command

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


def _config(path: Path | None):
    """The rule set; a bad one exits 2 with a line that starts with the setting's name."""
    try:
        return load_config(path)
    except ConfigError as exc:
        err.print(str(exc), highlight=False, soft_wrap=True, markup=False)
        raise typer.Exit(2) from None


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
