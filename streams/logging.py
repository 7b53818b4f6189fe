"""The one place that configures logging: structlog and stdlib (faust, aiokafka) alike.

- JSON lines by default; the console renderer when the stream is a TTY
  (`STAKEWATCH_LOG_FORMAT=json|console|auto` overrides).
- Level from the `level` argument or `STAKEWATCH_LOG_LEVEL` (default INFO); a bad level is a
  `ValueError` that names the setting.
- stdlib records go through the same processors and renderer as structlog's, so faust's and
  aiokafka's lines are JSON too (for a faust/mode `Worker`, pass `setup.worker_options()`,
  or mode replaces the root handlers with its own). structlog's own lines skip the stdlib
  and go straight to the stream (the worker logs a line per alert: ~20 µs instead of ~85).
- A `Redactor` masks secrets with `***` in every key and value, after exceptions are
  formatted and before rendering; the console renderer's text is masked once more.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import sys
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final, Literal, TextIO

import orjson
import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

__all__ = [
    "FORMAT_SETTING",
    "LEVEL_SETTING",
    "MASK",
    "LoggingSetup",
    "Redactor",
    "add_secrets",
    "bind_record",
    "configure_logging",
    "get_logger",
    "record_context",
]

LEVEL_SETTING: Final = "STAKEWATCH_LOG_LEVEL"
FORMAT_SETTING: Final = "STAKEWATCH_LOG_FORMAT"
MASK: Final = "***"
LEVELS: Final = {
    "DEBUG": logging.DEBUG,
    "INFO": logging.INFO,
    "WARNING": logging.WARNING,
    "WARN": logging.WARNING,
    "ERROR": logging.ERROR,
    "CRITICAL": logging.CRITICAL,
}
FORMATS: Final = ("auto", "json", "console")

# Environment variables whose values are secrets wherever they appear.
SECRET_ENV_NAME: Final = re.compile(r"^(STAKEWATCH_\w+_URL|\w+_(KEY|SECRET|TOKEN|PASSWORD))$")
# Shorter values cannot be masked as substrings without mangling ordinary text.
MIN_SECRET_LENGTH: Final = 4
_KEY_CACHE_LIMIT: Final = 10_000
_TEXT_CACHE_LIMIT: Final = 10_000
_TEXT_CACHE_LENGTH: Final = 128
# Keys (in event dicts, nested mappings and key=value text) whose values are secrets.
SECRET_KEY: Final = re.compile(
    r"secret|token|passw(or)?d|routing_key|api_?key|authorization|credential", re.IGNORECASE
)
_TEXT_PATTERNS: Final = (
    # Slack incoming webhooks: the URL is the credential.
    (re.compile(r"(?:https?://)?hooks\.slack(?:-gov)?\.com/[^\s\"'<>\\)\]]*"), MASK),
    # Authorization headers in any rendering: "Authorization: Bearer x", {'authorization': 'x'}.
    (
        re.compile(
            r"(\bauthorization[\"']?\s*[:=]\s*[\"']?)(?:(?:bearer|basic|token)\s+)?[^\s\"',;}]+",
            re.IGNORECASE,
        ),
        rf"\g<1>{MASK}",
    ),
    # key=value / "key": "value" with a secret-looking key.
    (
        re.compile(
            r"(\b[\w-]*(?:secret|token|passw(?:or)?d|routing_key|api_?key)[\w-]*[\"']?\s*[:=]\s*"
            r"[\"']?)(?!\*\*\*)[^\s\"'&,;}]+",
            re.IGNORECASE,
        ),
        rf"\g<1>{MASK}",
    ),
)


class Redactor:
    """Masks secrets: known values (from the environment or added later), Slack webhook URLs,
    Authorization headers, and values under secret-looking keys. A structlog processor."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._keys: dict[str, tuple[str, bool]] = {}  # key -> (as written out, secret?)
        self._texts: dict[str, str] = {}  # short text -> masked
        self.add(*secrets)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Redactor:
        env = os.environ if environ is None else environ
        return cls(value for name, value in env.items() if SECRET_ENV_NAME.match(name))

    def add(self, *secrets: str | None) -> None:
        """Mask these values from now on (e.g. secrets read from a config file)."""
        for secret in secrets:
            if not secret or len(secret) < MIN_SECRET_LENGTH:
                continue
            # The value as written, URL-encoded, and as it appears inside a JSON string.
            self._secrets.update(
                {secret, urllib.parse.quote(secret, safe=""), orjson.dumps(secret).decode()[1:-1]}
            )
        self._keys.clear()  # a key or a text may contain a new secret
        self._texts.clear()
        if self._secrets:
            alternatives = sorted(self._secrets, key=len, reverse=True)
            self._pattern = re.compile("|".join(map(re.escape, alternatives)))

    def redact_text(self, text: str) -> str:
        """`text` with secrets masked; short texts' results are cached (states, topics and
        names repeat from line to line)."""
        done = self._texts.get(text)
        if done is not None:
            return done
        masked = self._mask_text(text)
        if len(text) <= _TEXT_CACHE_LENGTH:
            if len(self._texts) >= _TEXT_CACHE_LIMIT:
                self._texts.clear()
            self._texts[text] = masked
        return masked

    def _mask_text(self, text: str) -> str:
        if self._pattern is not None:
            text = self._pattern.sub(MASK, text)
        # Every text pattern needs "hooks.slack", ":" or "=": most values (ids, keys, states)
        # have none, and skip three regex passes (the worker logs a line per alert).
        if ":" in text or "=" in text or "hooks.slack" in text:
            for pattern, replacement in _TEXT_PATTERNS:
                text = pattern.sub(replacement, text)
        return text

    def redact(self, value: Any, key: object = None, depth: int = 0) -> Any:
        """A copy of `value` with secrets masked; other objects become their redacted repr."""
        if isinstance(key, str) and value is not None and SECRET_KEY.search(key):
            return MASK
        if value is None or isinstance(value, bool | int | float):
            return value
        if isinstance(value, str):
            return self.redact_text(value)
        if depth > 20:
            return MASK
        if isinstance(value, Mapping):
            return {
                self.redact_text(str(k)): self.redact(v, k, depth + 1) for k, v in value.items()
            }
        if isinstance(value, list | tuple | set | frozenset):
            return [self.redact(v, None, depth + 1) for v in value]
        return self.redact_text(repr(value))

    def __call__(self, logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
        """The event dict with keys and values masked (the keys' verdicts are cached: a
        program logs few distinct keys)."""
        keys = self._keys
        redacted = {}
        for key, value in event_dict.items():
            verdict = keys.get(key)
            if verdict is None:
                verdict = self._key_verdict(key)
            name, secret = verdict
            redacted[name] = MASK if secret and value is not None else self.redact(value)
        return redacted

    def _key_verdict(self, key: str) -> tuple[str, bool]:
        """A top-level key as written out, and whether its value is a secret."""
        verdict = (self.redact_text(str(key)), bool(SECRET_KEY.search(str(key))))
        if len(self._keys) >= _KEY_CACHE_LIMIT:
            self._keys.clear()
        self._keys[key] = verdict
        return verdict


@dataclass(frozen=True, slots=True)
class LoggingSetup:
    """What `configure_logging` installed."""

    level: int
    format: Literal["json", "console"]
    handler: logging.Handler
    redactor: Redactor

    def worker_options(self) -> dict[str, Any]:
        """Keyword arguments for a faust/mode `Worker`, which otherwise swaps in its own root
        handler: keep ours, at our level, and leave stdout alone."""
        return {
            "loglevel": logging.getLevelName(self.level),
            "logging_config": {
                "version": 1,
                "disable_existing_loggers": False,
                "root": {"level": self.level, "handlers": []},
            },
            "loghandlers": [self.handler],
            "redirect_stdouts": False,
        }


_active: LoggingSetup | None = None


def configure_logging(
    level: str | None = None,
    *,
    fmt: str | None = None,
    stream: TextIO | None = None,
    environ: Mapping[str, str] | None = None,
    secrets: Iterable[str] = (),
) -> LoggingSetup:
    """Configure structlog and the stdlib root logger; safe to call again (it replaces).

    `level` / `fmt` win over `STAKEWATCH_LOG_LEVEL` / `STAKEWATCH_LOG_FORMAT` in `environ`
    (default `os.environ`); `stream` defaults to stderr; `secrets` are masked besides the
    secret-named environment variables.
    """
    global _active
    env = os.environ if environ is None else environ
    out = sys.stderr if stream is None else stream
    level_no = _parse_level(level if level is not None else env.get(LEVEL_SETTING, "INFO"))
    fmt_name = (fmt if fmt is not None else env.get(FORMAT_SETTING, "auto")).strip().lower()
    if fmt_name not in FORMATS:
        raise ValueError(f"{FORMAT_SETTING} must be one of {', '.join(FORMATS)}, got {fmt_name!r}")
    if fmt_name == "auto":
        fmt_name = "console" if _isatty(out) else "json"

    redactor = Redactor.from_environ(env)
    redactor.add(*secrets)
    renderer: Processor = (
        structlog.dev.ConsoleRenderer(colors=_isatty(out))
        if fmt_name == "console"
        else structlog.processors.JSONRenderer(serializer=_dumps)
    )

    def render(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> str:
        line = renderer(logger, method_name, event_dict)
        if isinstance(line, bytes | bytearray):
            line = line.decode()
        assert isinstance(line, str)  # both renderers render text or bytes
        # A JSON line is its redacted keys and values, escaped: nothing left to mask. The
        # console renderer's text is masked once more (the text patterns cost ~20 µs a line).
        return line if fmt_name == "json" else redactor.redact_text(line)

    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redactor,
            render,
        ],
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level_no)

    # Our own lines skip the stdlib (a LogRecord, a handler, a formatter: ~60 µs a line,
    # and the worker logs a line per alert): the same processors, straight to the stream.
    # The level, the logger's name and the time are added after the redactor: they hold
    # no secret, and the time would miss every cache.
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            redactor,
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            render,
        ],
        logger_factory=_LineWriterFactory(out, handler),
        wrapper_class=structlog.make_filtering_bound_logger(level_no),
        cache_logger_on_first_use=False,
    )
    _active = LoggingSetup(level_no, fmt_name, handler, redactor)  # type: ignore[arg-type]
    return _active


class _LineWriter:
    """structlog's logger for our lines: one write per rendered line, under the stdlib
    handler's lock (both write to the same stream); ``name`` is the line's ``logger``."""

    __slots__ = ("_handler", "_stream", "name")

    def __init__(self, name: str, stream: TextIO, handler: logging.Handler) -> None:
        self.name = name
        self._stream = stream
        self._handler = handler

    def msg(self, message: str) -> None:
        with self._handler.lock or contextlib.nullcontext():
            self._stream.write(message + "\n")
            self._stream.flush()

    debug = info = warning = warn = error = critical = exception = fatal = log = msg


@dataclass(frozen=True, slots=True)
class _LineWriterFactory:
    stream: TextIO
    handler: logging.Handler

    def __call__(self, *args: Any) -> _LineWriter:
        name = args[0] if args and isinstance(args[0], str) else "stakewatch"
        return _LineWriter(name, self.stream, self.handler)


def add_secrets(*secrets: str | None) -> None:
    """Mask these values in the active configuration's output (e.g. secrets from a TOML file)."""
    if _active is None:
        raise RuntimeError("configure_logging() has not been called")
    _active.redactor.add(*secrets)


def get_logger(name: str | None = None, **initial: Any) -> Any:
    """A structlog logger (stdlib-backed once `configure_logging` ran)."""
    return structlog.get_logger(name, **initial)


def _record_fields(**fields: Any) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value is not None}


def bind_record(
    logger: Any,
    *,
    topic: str | None = None,
    partition: int | None = None,
    offset: int | None = None,
    event_id: str | None = None,
    dedup_key: str | None = None,
    **extra: Any,
) -> Any:
    """`logger` bound to a record's coordinates (the fields given, None ones left out)."""
    return logger.bind(
        **_record_fields(
            topic=topic,
            partition=partition,
            offset=offset,
            event_id=event_id,
            dedup_key=dedup_key,
            **extra,
        )
    )


@contextmanager
def record_context(
    *,
    topic: str | None = None,
    partition: int | None = None,
    offset: int | None = None,
    event_id: str | None = None,
    dedup_key: str | None = None,
    **extra: Any,
) -> Iterator[None]:
    """Every line logged inside (in this task) carries the record's coordinates."""
    fields = _record_fields(
        topic=topic,
        partition=partition,
        offset=offset,
        event_id=event_id,
        dedup_key=dedup_key,
        **extra,
    )
    with structlog.contextvars.bound_contextvars(**fields):
        yield


def _parse_level(value: str | int) -> int:
    if isinstance(value, int) and value in LEVELS.values():
        return value
    name = str(value).strip().upper()
    if name not in LEVELS:
        choices = "DEBUG, INFO, WARNING, ERROR, CRITICAL"
        raise ValueError(f"{LEVEL_SETTING} must be one of {choices}, got {value!r}")
    return LEVELS[name]


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _dumps(obj: Any, **_: Any) -> str:
    try:
        return orjson.dumps(obj, default=repr).decode()
    except TypeError:  # e.g. an int beyond 64 bits: the stdlib encoder takes anything
        return json.dumps(obj, default=repr)
