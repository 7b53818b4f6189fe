"""Where records go: the routing file (TOML, ``STAKEWATCH_ALERTS_CONFIG``) and the secrets
(environment only, via pydantic-settings).

::

    default_receivers = ["risk-slack"]     # optional: for records no route matches

    [defaults]                             # optional: delivery policy for every receiver
    give_up_after = 3600                   # seconds of retrying one record before giving up

    [[receivers]]
    name = "risk-slack"
    type = "slack"                         # slack | pagerduty | webhook | alertmanager | console

    [[receivers]]
    name = "oncall"
    type = "pagerduty"

    [[routes]]                             # first match wins, unless continue = true
    severity = "critical"                  # single value or list; absent = any
    receivers = ["oncall", "risk-slack"]

    [[routes]]
    client = ["google", "openai"]
    severity = ["high", "warning"]
    receivers = "risk-slack"

    [[receivers]]
    name = "openai-hook"
    type = "webhook"
    url_env = "STAKEWATCH_WEBHOOK_URL_OPENAI"
    clients = ["openai"]                   # a client's own receiver: only its records, ever

No routing file: every receiver whose secret is set in the environment gets every record.
A receiver with ``clients`` never gets another client's record: a route that could send it
one, or ``default_receivers`` naming it, is an error at start, and the router drops it from
any other client's record as well (so with no routes each such receiver gets its clients').
A bad file or setting raises ``AlertConfigError`` naming it, e.g.
``routes[1].severity: 'urgent' is not one of critical, high, warning``. Secret values are
never part of an error message or a repr.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from alerts.receivers.pagerduty import DEFAULT_URL as PAGERDUTY_URL
from alerts.receivers.webhook import signing_key
from alerts.record import SEVERITIES, AlertRecord
from alerts.retry import RetryPolicy

__all__ = [
    "RECEIVER_TYPES",
    "AlertConfigError",
    "AlertSettings",
    "AlertsConfig",
    "AllReceivers",
    "ReceiverSpec",
    "Route",
    "Router",
    "load_config",
]

RECEIVER_TYPES = ("slack", "pagerduty", "webhook", "alertmanager", "console")
ENV = {
    "slack": "STAKEWATCH_SLACK_WEBHOOK_URL",
    "pagerduty": "STAKEWATCH_PAGERDUTY_ROUTING_KEY",
    "pagerduty_url": "STAKEWATCH_PAGERDUTY_URL",
    "webhook": "STAKEWATCH_WEBHOOK_URL",
    "webhook_secret": "STAKEWATCH_WEBHOOK_SECRET",
    "alertmanager": "STAKEWATCH_ALERTMANAGER_URL",
}
#: Default rate limits (count, seconds): Slack ~1 message/s per webhook, PagerDuty
#: ~120 events/min per routing key.
DEFAULT_RATE = {"slack": (1.0, 1.0), "pagerduty": (120.0, 60.0)}

_SLUG = re.compile(r"^[a-z0-9][a-z0-9._-]{0,127}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class AlertConfigError(ValueError):
    """A bad routing file or setting; the message names it and never holds a secret."""


class AlertSettings(BaseSettings):
    """``STAKEWATCH_*`` environment variables of alert delivery."""

    model_config = SettingsConfigDict(
        env_prefix="STAKEWATCH_", env_ignore_empty=True, extra="ignore"
    )

    alerts_config: Path | None = None
    alerts_console: Literal["off", "rich", "jsonl"] = "off"
    slack_webhook_url: SecretStr | None = None
    pagerduty_routing_key: SecretStr | None = None
    pagerduty_url: str = PAGERDUTY_URL
    webhook_url: SecretStr | None = None
    webhook_secret: SecretStr | None = None
    alertmanager_url: SecretStr | None = None


# -- the routing file ---------------------------------------------------------------------


def _one_of(allowed: Sequence[str]) -> Any:
    def check(value: Any) -> tuple[str, ...]:
        values = _as_tuple(value)
        for v in values:
            if v not in allowed:
                raise ValueError(f"{v!r} is not one of {', '.join(allowed)}")
        return values

    return BeforeValidator(check)


def _as_tuple(value: Any) -> tuple[str, ...]:
    values = (value,) if isinstance(value, str) else value
    if not isinstance(values, list | tuple) or not values:
        raise ValueError("expected a string or a non-empty list of strings")
    if not all(isinstance(v, str) for v in values):
        raise ValueError("expected a string or a non-empty list of strings")
    return tuple(values)


def _slugs(value: Any) -> tuple[str, ...]:
    values = _as_tuple(value)
    for v in values:
        if not _SLUG.match(v):
            raise ValueError(f"{v!r} is not an entity id (lowercase slug such as 'scale-ai')")
    return values


def _names(value: Any) -> tuple[str, ...]:
    values = _as_tuple(value)
    for v in values:
        if not _NAME.match(v):
            raise ValueError(f"{v!r} is not a receiver name")
    return values


def _receiver_type(value: Any) -> str:
    if value not in RECEIVER_TYPES:
        raise ValueError(f"{value!r} is not one of {', '.join(RECEIVER_TYPES)}")
    return str(value)


def _env_name(value: Any) -> str:
    if not isinstance(value, str) or not _ENV_NAME.match(value):
        raise ValueError(f"{value!r} is not an environment variable name")
    return value


EnvName = Annotated[str, BeforeValidator(_env_name)]
Seconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class _Strict(BaseModel):
    # strict: TOML has real types, so `continue = "yes"` or `give_up_after = "60"` is a typo.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class _DefaultsFile(_Strict):
    give_up_after: Seconds | None = None
    max_in_flight: Annotated[int, Field(ge=1, le=1000)] | None = None
    timeout: Seconds | None = None
    initial_backoff: Seconds | None = None
    max_backoff: Seconds | None = None


class _ReceiverFile(_DefaultsFile):
    name: Annotated[str, BeforeValidator(lambda v: _names(v)[0])]
    type: Annotated[str, BeforeValidator(_receiver_type)]
    url_env: EnvName | None = None
    routing_key_env: EnvName | None = None
    secret_env: EnvName | None = None
    rate_limit: Annotated[float, Field(gt=0)] | None = None
    rate_period: Seconds = 1.0
    mode: Literal["rich", "jsonl"] | None = None
    source: Annotated[str, Field(min_length=1, max_length=255)] | None = None
    firing_ttl_days: Annotated[float, Field(gt=0, le=3650)] | None = None
    clients: Annotated[tuple[str, ...], BeforeValidator(_slugs)] | None = None


class _RouteFile(_Strict):
    receivers: Annotated[tuple[str, ...], BeforeValidator(_names)]
    severity: Annotated[tuple[str, ...], _one_of(SEVERITIES)] | None = None
    client: Annotated[tuple[str, ...], BeforeValidator(_slugs)] | None = None
    vendor: Annotated[tuple[str, ...], BeforeValidator(_slugs)] | None = None
    rival: Annotated[tuple[str, ...], BeforeValidator(_slugs)] | None = None
    continue_: bool = Field(False, alias="continue")


class _RoutingFile(_Strict):
    default_receivers: Annotated[tuple[str, ...], BeforeValidator(_names)] = ()
    defaults: _DefaultsFile = _DefaultsFile()
    receivers: list[_ReceiverFile] = Field(min_length=1)
    routes: list[_RouteFile] = []


_ONLY_FOR = {
    "url_env": ("slack", "webhook", "alertmanager"),
    "routing_key_env": ("pagerduty",),
    "secret_env": ("webhook",),
    "mode": ("console",),
    "source": ("pagerduty",),
    "firing_ttl_days": ("alertmanager",),
}


# -- resolved configuration ---------------------------------------------------------------


@dataclass(frozen=True)
class ReceiverSpec:
    """One receiver, fully resolved (secrets as ``SecretStr``, never printed)."""

    name: str
    type: str
    url: SecretStr | None = None  # Slack webhook / webhook / Alertmanager URL; PD endpoint
    secret: SecretStr | None = None  # PD routing key / webhook signing secret
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    rate: tuple[float, float] | None = None  # (count, seconds)
    max_in_flight: int = 8
    timeout: float = 10.0
    mode: Literal["rich", "jsonl"] = "rich"
    source: str = "stakewatch"
    firing_ttl: dt.timedelta = dt.timedelta(days=365)
    clients: frozenset[str] | None = None  # a client's own receiver: only their records


def _matches(allowed: frozenset[str] | None, value: str) -> bool:
    return allowed is None or value in allowed


@dataclass(frozen=True)
class Route:
    receivers: tuple[str, ...]
    severity: frozenset[str] | None = None
    client: frozenset[str] | None = None
    vendor: frozenset[str] | None = None
    rival: frozenset[str] | None = None
    continue_: bool = False

    def matches(self, record: AlertRecord) -> bool:
        return (
            _matches(self.severity, record.severity)
            and _matches(self.client, record.client)
            and _matches(self.vendor, record.vendor)
            and _matches(self.rival, record.rival)
        )


def _theirs(
    names: tuple[str, ...], owners: Mapping[str, frozenset[str]], record: AlertRecord
) -> tuple[str, ...]:
    """`names` less the receivers that belong to other clients than the record's."""
    if not owners:
        return names
    return tuple(n for n in names if n not in owners or record.client in owners[n])


@dataclass(frozen=True)
class Router:
    """First matching route wins; a route with ``continue_`` lets matching go on.
    Records no route matches go to ``default``. A receiver in ``owners`` (name → its
    clients) only ever gets records of those clients, whatever the routes say."""

    routes: tuple[Route, ...]
    default: tuple[str, ...] = ()
    owners: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def route(self, record: AlertRecord) -> tuple[str, ...]:
        chosen: list[str] = []
        matched = False
        for route in self.routes:
            if route.matches(record):
                matched = True
                chosen += [r for r in route.receivers if r not in chosen]
                if not route.continue_:
                    break
        return _theirs(tuple(chosen) if matched else self.default, self.owners, record)


@dataclass(frozen=True)
class AllReceivers:
    """No routes: every receiver gets every record, except a client's own receiver
    (``owners``), which gets only its clients' records."""

    names: tuple[str, ...]
    owners: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def route(self, record: AlertRecord) -> tuple[str, ...]:
        return _theirs(self.names, self.owners, record)


@dataclass(frozen=True)
class AlertsConfig:
    receivers: tuple[ReceiverSpec, ...]
    router: Router | AllReceivers
    source: Path | None = None  # the routing file, if any
    unused: tuple[str, ...] = ()  # receivers no route or default reaches


# -- loading ------------------------------------------------------------------------------


def _loc(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + ("continue" if part == "continue_" else str(part))
    return out


_WRAPPERS = ("function-", "tuple")


def _messages(exc: ValidationError, env: bool = False) -> str:
    lines = []
    for err in exc.errors(include_url=False):
        loc = err["loc"]
        # Annotated/union wrappers add loc parts like 'function-before[...]' or type names.
        parts = [p for p in loc if isinstance(p, int) or not str(p).startswith(_WRAPPERS)]
        where = f"STAKEWATCH_{str(parts[0]).upper()}" if env and parts else _loc(parts)
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown setting"
        elif err["type"] == "missing":
            msg = "required"
        elif err["type"] == "literal_error":
            # Literal fields are never secrets: showing the bad value helps.
            expected = str(err.get("ctx", {}).get("expected", "")).replace("'", "")
            msg = f"{err.get('input')!r} is not one of {expected}"
        lines.append(f"{where}: {msg}")
    return "; ".join(dict.fromkeys(lines))


def _secret(
    settings_value: SecretStr | None, var: str, default_var: str, environ: Mapping[str, str]
) -> SecretStr | None:
    if var == default_var:
        return settings_value
    value = environ.get(var)
    return SecretStr(value) if value else None


def _check_url(var: str, value: SecretStr | None, where: str) -> None:
    if value is None:
        return
    text = value.get_secret_value()
    if not re.match(r"^https?://[^/\s]+", text):
        raise AlertConfigError(f"{where}{var}: not an http(s) URL (value not shown)")


def _check_webhook_secret(var: str, value: SecretStr, where: str) -> None:
    try:
        signing_key(value)
    except ValueError as exc:
        raise AlertConfigError(f"{where}{var}: {exc}") from None


def _spec(
    i: int,
    rf: _ReceiverFile,
    defaults: _DefaultsFile,
    settings: AlertSettings,
    environ: Mapping[str, str],
) -> ReceiverSpec:
    where = f"receivers[{i}] ({rf.name}): "
    for key, types in _ONLY_FOR.items():
        if getattr(rf, key) is not None and rf.type not in types:
            raise AlertConfigError(
                f"receivers[{i}].{key}: only for {' / '.join(types)} receivers, not {rf.type}"
            )
    give_up = rf.give_up_after or defaults.give_up_after or 3600.0
    initial = rf.initial_backoff or defaults.initial_backoff or 1.0
    max_wait = max(initial, rf.max_backoff or defaults.max_backoff or 60.0)
    rate = (rf.rate_limit, rf.rate_period) if rf.rate_limit else DEFAULT_RATE.get(rf.type)
    common: dict[str, Any] = {
        "name": rf.name,
        "type": rf.type,
        "policy": RetryPolicy(initial=initial, max_wait=max_wait, give_up_after=give_up),
        "rate": rate,
        "max_in_flight": rf.max_in_flight or defaults.max_in_flight or 8,
        "timeout": rf.timeout or defaults.timeout or 10.0,
    }
    url: SecretStr | None = None
    secret: SecretStr | None = None
    if rf.type == "slack":
        var = rf.url_env or ENV["slack"]
        url = _secret(settings.slack_webhook_url, var, ENV["slack"], environ)
        if url is None:
            raise AlertConfigError(f"{where}{var} is not set (the Slack incoming-webhook URL)")
        _check_url(var, url, where)
    elif rf.type == "pagerduty":
        var = rf.routing_key_env or ENV["pagerduty"]
        secret = _secret(settings.pagerduty_routing_key, var, ENV["pagerduty"], environ)
        if secret is None:
            raise AlertConfigError(f"{where}{var} is not set (the Events API v2 routing key)")
        url = SecretStr(settings.pagerduty_url)
        common["source"] = rf.source or "stakewatch"
    elif rf.type == "webhook":
        var = rf.url_env or ENV["webhook"]
        url = _secret(settings.webhook_url, var, ENV["webhook"], environ)
        if url is None:
            raise AlertConfigError(f"{where}{var} is not set (the webhook URL)")
        _check_url(var, url, where)
        svar = rf.secret_env or ENV["webhook_secret"]
        secret = _secret(settings.webhook_secret, svar, ENV["webhook_secret"], environ)
        if secret is None:
            raise AlertConfigError(f"{where}{svar} is not set (the webhook signing secret)")
        _check_webhook_secret(svar, secret, where)
    elif rf.type == "alertmanager":
        var = rf.url_env or ENV["alertmanager"]
        url = _secret(settings.alertmanager_url, var, ENV["alertmanager"], environ)
        if url is None:
            raise AlertConfigError(f"{where}{var} is not set (the Alertmanager base URL)")
        _check_url(var, url, where)
        if rf.firing_ttl_days:
            common["firing_ttl"] = dt.timedelta(days=rf.firing_ttl_days)
    else:
        common["mode"] = rf.mode or "rich"
    if rf.clients:
        common["clients"] = frozenset(rf.clients)
    return ReceiverSpec(url=url, secret=secret, **common)


def _from_env(settings: AlertSettings) -> list[ReceiverSpec]:
    specs: list[ReceiverSpec] = []
    if settings.slack_webhook_url:
        _check_url(ENV["slack"], settings.slack_webhook_url, "")
        specs.append(
            ReceiverSpec(
                "slack", "slack", url=settings.slack_webhook_url, rate=DEFAULT_RATE["slack"]
            )
        )
    if settings.pagerduty_routing_key:
        specs.append(
            ReceiverSpec(
                "pagerduty",
                "pagerduty",
                url=SecretStr(settings.pagerduty_url),
                secret=settings.pagerduty_routing_key,
                rate=DEFAULT_RATE["pagerduty"],
            )
        )
    if settings.webhook_url:
        _check_url(ENV["webhook"], settings.webhook_url, "")
        if not settings.webhook_secret:
            raise AlertConfigError(
                f"{ENV['webhook_secret']}: required when {ENV['webhook']} is set "
                "(webhooks are always signed)"
            )
        _check_webhook_secret(ENV["webhook_secret"], settings.webhook_secret, "")
        specs.append(
            ReceiverSpec(
                "webhook", "webhook", url=settings.webhook_url, secret=settings.webhook_secret
            )
        )
    if settings.alertmanager_url:
        _check_url(ENV["alertmanager"], settings.alertmanager_url, "")
        specs.append(ReceiverSpec("alertmanager", "alertmanager", url=settings.alertmanager_url))
    if settings.alerts_console != "off":
        specs.append(ReceiverSpec("console", "console", mode=settings.alerts_console))
    return specs


def parse_routing(
    text: str, settings: AlertSettings, environ: Mapping[str, str] | None = None
) -> AlertsConfig:
    """Parse a routing file's text against ``settings`` (raises ``AlertConfigError``)."""
    environ = os.environ if environ is None else environ
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise AlertConfigError(f"invalid TOML: {exc}") from None
    try:
        parsed = _RoutingFile.model_validate(raw)
    except ValidationError as exc:
        raise AlertConfigError(_messages(exc)) from None
    specs = [
        _spec(i, rf, parsed.defaults, settings, environ) for i, rf in enumerate(parsed.receivers)
    ]
    names = [s.name for s in specs]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise AlertConfigError(f"receivers[{i}].name: {name!r} is defined twice")
    owners = {s.name: s.clients for s in specs if s.clients is not None}
    reached: set[str] = set(parsed.default_receivers)
    for i, name in enumerate(parsed.default_receivers):
        if name not in names:
            raise AlertConfigError(
                f"default_receivers[{i}]: unknown receiver {name!r} (defined: {', '.join(names)})"
            )
        if name in owners:
            raise AlertConfigError(
                f"default_receivers[{i}]: {name!r} belongs to clients "
                f"{', '.join(sorted(owners[name]))}, and unrouted records may be anyone's"
            )
    routes = []
    for i, rt in enumerate(parsed.routes):
        for j, name in enumerate(rt.receivers):
            if name not in names:
                raise AlertConfigError(
                    f"routes[{i}].receivers[{j}]: unknown receiver {name!r} "
                    f"(defined: {', '.join(names)})"
                )
            if name in owners and not (rt.client and set(rt.client) <= owners[name]):
                raise AlertConfigError(
                    f"routes[{i}].receivers[{j}]: {name!r} belongs to clients "
                    f"{', '.join(sorted(owners[name]))}: the route must match only them "
                    f"(client = [...])"
                )
        reached.update(rt.receivers)
        routes.append(
            Route(
                receivers=rt.receivers,
                severity=frozenset(rt.severity) if rt.severity else None,
                client=frozenset(rt.client) if rt.client else None,
                vendor=frozenset(rt.vendor) if rt.vendor else None,
                rival=frozenset(rt.rival) if rt.rival else None,
                continue_=rt.continue_,
            )
        )
    router: Router | AllReceivers
    if routes:
        router = Router(tuple(routes), parsed.default_receivers, owners)
        unused = tuple(n for n in names if n not in reached)
    elif parsed.default_receivers:
        router = Router((), parsed.default_receivers, owners)
        unused = tuple(n for n in names if n not in reached)
    else:
        router = AllReceivers(tuple(names), owners)
        unused = ()
    return AlertsConfig(tuple(specs), router, settings.alerts_config, unused)


def load_config(environ: Mapping[str, str] | None = None) -> AlertsConfig:
    """Read the ``STAKEWATCH_*`` settings and the routing file they name; fail early and
    clearly (``AlertConfigError``)."""
    try:
        settings = AlertSettings()
    except ValidationError as exc:
        raise AlertConfigError(_messages(exc, env=True)) from None
    if not re.match(r"^https?://[^/\s]+", settings.pagerduty_url):
        raise AlertConfigError(f"{ENV['pagerduty_url']}: not an http(s) URL")
    path = settings.alerts_config
    if path is None:
        specs = _from_env(settings)
        return AlertsConfig(tuple(specs), AllReceivers(tuple(s.name for s in specs)))
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise AlertConfigError(
            f"STAKEWATCH_ALERTS_CONFIG: cannot read {str(path)!r}: {exc.strerror}"
        ) from None
    try:
        return parse_routing(text, settings, environ)
    except AlertConfigError as exc:
        raise AlertConfigError(f"{path}: {exc}") from None
