"""What the command modules share: the error console, common options, settings and
broker sessions that fail as one line, and running a command's coroutine."""

from __future__ import annotations

import asyncio
import contextlib
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

__all__ = [
    "BrokerOpt",
    "ConfigOpt",
    "EmbeddedOpt",
    "EntityOpt",
    "NowOpt",
    "clock_reading",
    "config_of",
    "engine_of",
    "err",
    "print_json",
    "print_summary",
    "run",
    "say_rejected",
    "session",
    "settings_of",
    "snapshot_key_of",
    "time_option",
]

_T = TypeVar("_T")

err = Console(stderr=True)

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", help="TOML file with the rule set (threshold, severity, classes)."),
]


def engine_of(config: Path | None) -> Engine:
    return Engine(config_of(config))


NowOpt = Annotated[
    str | None,
    typer.Option(
        "--now",
        help="RFC 3339 time the file counts as read at: an event more than a day after it "
        "is rejected as `future`. Default: the clock now.",
        show_default=False,
    ),
]


def time_option(name: str, value: str):
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


def clock_reading(now: str | None) -> int:
    """The clock reading an offline command judges `future` by, in microseconds: --now, or
    the wall clock (the one place it enters, SPEC v2 §2)."""
    import time

    if now is None:
        return time.time_ns() // 1000
    return int(time_option("--now", now).timestamp() * 1_000_000)


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
async def session(settings: Settings, embedded: bool, private: str = "") -> Any:
    """``broker_session`` for a command: an external broker must answer, a private embedded
    broker is refused while something runs elsewhere (``--embedded`` allows it), and one
    started for this command is said so (``private``: what that means for the command)."""
    from streams.kafka.connect import broker_session

    async with broker_session(settings, private_ok=embedded, probe=True) as conn:
        if conn.owner:
            err.print(
                f"note: no broker was running on data dir {settings.data_dir}, so this command "
                f"started a private embedded broker that stops when it ends{private}",
                highlight=False,
                soft_wrap=True,
            )
        yield conn


def settings_of(broker: str | None = None) -> Settings:
    """Settings with CLI overrides; a bad one exits 2 with one line naming it."""
    from streams.kafka.broker import parse_broker_url
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


def snapshot_key_of(settings: Settings) -> Any:
    """The workers' snapshot key for these settings; a bad key file exits 2 naming it."""
    from streams.agents.snapshot_key import snapshot_key
    from streams.settings import SettingsError

    try:
        return snapshot_key(settings)
    except SettingsError as exc:
        err.print(str(exc), highlight=False, soft_wrap=True, markup=False)
        raise typer.Exit(2) from None


def run(coro: Coroutine[Any, Any, _T]) -> _T:
    """Run a command's coroutine; expected failures become one line and exit code 1 (2 for
    settings); Ctrl-C exits 130 and SIGTERM 143, both after the cleanup ran."""
    from aiokafka.errors import KafkaError

    from streams.kafka.broker import BrokerError
    from streams.kafka.publish import TopicMissingError
    from streams.kafka.topics import TopicMismatchError
    from streams.settings import SettingsError
    from streams.signals import Terminated, terminable

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


def config_of(path: Path | None):
    """The rule set; a bad one exits 2 with a line that starts with the setting's name."""
    try:
        return load_config(path)
    except ConfigError as exc:
        err.print(str(exc), highlight=False, soft_wrap=True, markup=False)
        raise typer.Exit(2) from None


def print_summary(summary: dict) -> None:
    reasons = ", ".join(f"{k} {v}" for k, v in summary["rejected_by_reason"].items()) or "none"
    err.print(
        f"events read {summary['events_read']}, applied {summary['applied']}, "
        f"rejected {summary['rejected']} ({reasons}), alerts {summary['alerts']}",
        highlight=False,
        soft_wrap=True,
    )


def say_rejected(file: str, number: int, rejection: object) -> None:
    """One line per rejected input line: ``FILE:LINE: code: detail`` (as compilers do, so
    editors and terminals jump to it)."""
    err.print(f"{file}:{number}: {rejection}", highlight=False, soft_wrap=True, markup=False)


def print_json(doc: Any) -> None:
    sys.stdout.buffer.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n")


EntityOpt = Annotated[str, typer.Option(help="Entity id.", show_default=False)]
