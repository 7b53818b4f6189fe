"""PagerDuty Events API v2 (``POST /v2/enqueue``): ``trigger`` while firing, ``resolve`` on
``resolved``, both keyed by the record's ``dedup_key`` so a repeated trigger is folded into
the open alert by PagerDuty itself.

Severity map: critical→critical, high→error, warning→warning. The summary is cut to 1024
characters (the API's limit). ``dedup_key`` is limited to 255 characters by the API; a
longer one (three 128-character ids) is shortened deterministically to its first 190
characters, ``~`` and the SHA-256 hex of the whole key, so trigger and resolve still agree.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

import httpx
from pydantic import SecretStr

from alerts.format import (
    SPEC_RULES,
    format_money,
    format_paths,
    format_percent,
    sensitive,
    summary,
)
from alerts.receivers.base import Delivery, Scrubber, post, redact_httpx_logs
from alerts.record import AlertRecord
from streams.engine import EngineConfig

__all__ = ["DEFAULT_URL", "SEVERITY_MAP", "PagerDutyReceiver", "pagerduty_dedup_key", "pd_event"]

DEFAULT_URL = "https://events.pagerduty.com/v2/enqueue"
SEVERITY_MAP = {"critical": "critical", "high": "error", "warning": "warning"}
_MAX_KEY = 255


def pagerduty_dedup_key(dedup_key: str) -> str:
    """``dedup_key`` if it fits PagerDuty's 255 characters, else a stable short form."""
    if len(dedup_key) <= _MAX_KEY:
        return dedup_key
    return f"{dedup_key[:190]}~{hashlib.sha256(dedup_key.encode()).hexdigest()}"


def pd_event(
    record: AlertRecord,
    routing_key: str,
    *,
    source: str = "stakewatch",
    rules: EngineConfig = SPEC_RULES,
) -> dict[str, Any]:
    """The Events API v2 body for ``record`` (pure; ``rules``: the worker's rule set)."""
    key = pagerduty_dedup_key(record.dedup_key)
    if record.status == "resolved":
        return {"routing_key": routing_key, "event_action": "resolve", "dedup_key": key}
    details = {
        "dedup_key": record.dedup_key,
        "client": record.client,
        "vendor": record.vendor,
        "rival": record.rival,
        "severity": record.severity,
        "effective_stake": format_percent(record.stake),
        "stake_percent": record.stake,
        "pending": record.pending,
        "controlled": record.controlled,
        "ownership_paths": format_paths(record, limit=20),
        "paths": [p.model_dump(mode="json") for p in record.paths],
        "active_contracts": list(record.active_contracts),
        "sensitive_data_classes": sensitive(record, rules.sensitive_data_classes),
        "data_classes": list(record.data_classes),
        "spend_365d": format_money(record.spend_365d),
        "spend_365d_usd": record.spend_365d,
        "event_id": record.event_id,
        "event_time": record.event_time,
    }
    return {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": key,
        "payload": {
            "summary": summary(record, 1024, rules),
            "source": source,
            "severity": SEVERITY_MAP[record.severity],
            "timestamp": record.event_time,
            "component": record.vendor,
            "group": record.client,
            "class": "conflict-of-interest",
            "custom_details": details,
        },
        "client": "Stakewatch",
    }


class PagerDutyReceiver:
    """Sends Events API v2 events for one routing key (``STAKEWATCH_PAGERDUTY_ROUTING_KEY``)."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        routing_key: SecretStr,
        *,
        url: str = DEFAULT_URL,
        name: str = "pagerduty",
        source: str = "stakewatch",
        rules: EngineConfig = SPEC_RULES,
        timeout: float = 10.0,
    ) -> None:
        redact_httpx_logs()
        self._client = client
        self._key = routing_key
        self._url = url
        self._name = name
        self._source = source
        self._rules = rules
        self._timeout = timeout
        self._scrub = Scrubber([routing_key])

    @property
    def name(self) -> str:
        return self._name

    def __repr__(self) -> str:
        return (
            f"PagerDutyReceiver(name={self._name!r}, url={self._url!r}, "
            "routing_key=SecretStr('**********'))"
        )

    async def deliver(self, record: AlertRecord) -> Delivery:
        body = pd_event(
            record,
            self._key.get_secret_value(),
            source=self._source,
            rules=self._rules,
        )
        return await post(
            self._client,
            receiver=self._name,
            url=self._url,
            scrub=self._scrub,
            json=body,
            request_timeout=self._timeout,
            now=lambda: dt.datetime.now(dt.UTC),
        )
