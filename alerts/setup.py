"""Build the configured receivers and the dispatcher in one call (what the worker uses).

Receivers word records by the rule set the worker runs with (``rules``, the worker's
``EngineConfig``): under ``--config rules.toml`` a Slack message says "below 5%" where the
engine's threshold is 5, and lists the data classes that rule set calls sensitive."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import IO, Any

import httpx
from aiolimiter import AsyncLimiter

from alerts.dispatcher import Channel, DeliveryMetrics, Dispatcher
from alerts.format import SPEC_RULES
from alerts.notification_log import NotificationLog
from alerts.receivers.alertmanager import AlertmanagerReceiver
from alerts.receivers.base import Receiver
from alerts.receivers.console import ConsoleReceiver
from alerts.receivers.pagerduty import PagerDutyReceiver
from alerts.receivers.slack import SlackReceiver
from alerts.receivers.webhook import WebhookReceiver
from alerts.routing import AlertsConfig, ReceiverSpec, load_config
from streams.engine import EngineConfig

__all__ = ["build_channels", "build_dispatcher", "build_receiver"]


def build_receiver(
    spec: ReceiverSpec,
    client: httpx.AsyncClient,
    *,
    rules: EngineConfig = SPEC_RULES,
    console_file: IO[str] | None = None,
) -> Receiver:
    """The receiver for one resolved spec, wording records by ``rules``."""
    if spec.type == "slack":
        assert spec.url is not None
        return SlackReceiver(client, spec.url, name=spec.name, rules=rules, timeout=spec.timeout)
    if spec.type == "pagerduty":
        assert spec.url is not None and spec.secret is not None
        return PagerDutyReceiver(
            client,
            spec.secret,
            url=spec.url.get_secret_value(),
            name=spec.name,
            source=spec.source,
            rules=rules,
            timeout=spec.timeout,
        )
    if spec.type == "webhook":
        assert spec.url is not None and spec.secret is not None
        return WebhookReceiver(client, spec.url, spec.secret, name=spec.name, timeout=spec.timeout)
    if spec.type == "alertmanager":
        assert spec.url is not None
        return AlertmanagerReceiver(
            client,
            spec.url,
            name=spec.name,
            firing_ttl=spec.firing_ttl,
            rules=rules,
            timeout=spec.timeout,
        )
    if spec.type == "console":
        return ConsoleReceiver(name=spec.name, mode=spec.mode, file=console_file, rules=rules)
    raise ValueError(f"unknown receiver type {spec.type!r}")


def build_channels(
    config: AlertsConfig,
    client: httpx.AsyncClient,
    *,
    rules: EngineConfig = SPEC_RULES,
    console_file: IO[str] | None = None,
) -> list[Channel]:
    """Receivers with their policies. Receivers posting to the same webhook URL or routing
    key share one rate limiter (the limit is the target's, not the receiver's)."""
    limiters: dict[tuple[str, str, float, float], AsyncLimiter] = {}
    channels = []
    for spec in config.receivers:
        limiter = None
        if spec.rate is not None:
            target = spec.secret if spec.type == "pagerduty" else spec.url
            digest = hashlib.sha256(
                (target.get_secret_value() if target else spec.name).encode()
            ).hexdigest()
            key = (spec.type, digest, *spec.rate)
            limiter = limiters.get(key) or limiters.setdefault(key, AsyncLimiter(*spec.rate))
        channels.append(
            Channel(
                build_receiver(spec, client, rules=rules, console_file=console_file),
                policy=spec.policy,
                limiter=limiter,
                max_in_flight=spec.max_in_flight,
            )
        )
    return channels


def build_dispatcher(
    client: httpx.AsyncClient,
    notification_log: NotificationLog,
    *,
    config: AlertsConfig | None = None,
    rules: EngineConfig = SPEC_RULES,
    deliver: bool = True,
    metrics: DeliveryMetrics | None = None,
    console_file: IO[str] | None = None,
    sleep: Callable[[float], Awaitable[None]] | None = None,
    **dispatcher_options: Any,
) -> Dispatcher:
    """``load_config()`` (unless given), receivers wording records by ``rules``, router → a
    ready ``Dispatcher``."""
    config = config or load_config()
    channels = build_channels(config, client, rules=rules, console_file=console_file)
    if sleep is not None:
        dispatcher_options["sleep"] = sleep
    return Dispatcher(
        channels,
        config.router,
        notification_log,
        deliver=deliver,
        metrics=metrics,
        **dispatcher_options,
    )
