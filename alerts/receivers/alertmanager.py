"""Prometheus Alertmanager (``POST /api/v2/alerts``), for teams that route everything there.

Labels: ``alertname=StakewatchConflict``, ``dedup_key``, ``client``, ``vendor``, ``rival``,
``severity``; annotations: ``summary``, ``path`` and the figures. Alertmanager identifies an
alert by its label set, so:

- ``startsAt`` is the event time of the record (never later than now);
- a firing alert gets ``endsAt = now + firing_ttl`` (default 365 days): Stakewatch emits a
  record only when something changes and does not re-send like Prometheus does, so without
  an explicit ``endsAt`` Alertmanager would resolve the alert after its ``resolve_timeout``;
- ``resolved`` posts the same labels with ``endsAt = now``;
- a severity change changes the label set: the alert with the old severity is resolved in
  the same request. The receiver remembers each conflict's last severity (bounded, in
  memory); when it does not know it (after a restart), a ``resolved`` record resolves the
  conflict under every severity, so nothing stays open.
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import httpx
from pydantic import SecretStr

from alerts.format import SPEC_RULES, format_money, format_paths, format_percent, summary
from alerts.receivers.base import Delivery, Scrubber, post, redact_httpx_logs
from alerts.record import SEVERITIES, AlertRecord
from streams.engine import EngineConfig

__all__ = ["ALERTNAME", "AlertmanagerReceiver", "am_alert"]

ALERTNAME = "StakewatchConflict"


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def am_alert(
    record: AlertRecord,
    *,
    now: dt.datetime,
    firing_ttl: dt.timedelta,
    severity: str | None = None,
    resolved: bool | None = None,
    generator_url: str | None = None,
    rules: EngineConfig = SPEC_RULES,
) -> dict[str, Any]:
    """One postable alert for ``record`` (``severity``/``resolved`` override the record's;
    ``rules``: the worker's rule set)."""
    sev = severity or record.severity
    is_resolved = record.status == "resolved" if resolved is None else resolved
    starts = min(record.event_datetime, now)
    alert: dict[str, Any] = {
        "labels": {
            "alertname": ALERTNAME,
            "dedup_key": record.dedup_key,
            "client": record.client,
            "vendor": record.vendor,
            "rival": record.rival,
            "severity": sev,
        },
        "annotations": {
            "summary": summary(record, rules=rules),
            "path": "; ".join(format_paths(record)),
            "stake": format_percent(record.stake),
            "pending": str(record.pending).lower(),
            "controlled": str(record.controlled).lower(),
            "active_contracts": ", ".join(record.active_contracts),
            "data_classes": ", ".join(record.data_classes),
            "spend_365d": format_money(record.spend_365d),
            "event_id": record.event_id,
            "event_time": record.event_time,
        },
        "startsAt": _iso(starts),
        "endsAt": _iso(now if is_resolved else now + firing_ttl),
    }
    if generator_url:
        alert["generatorURL"] = generator_url
    return alert


class AlertmanagerReceiver:
    """Posts to ``STAKEWATCH_ALERTMANAGER_URL`` (the base URL, e.g. ``http://am:9093``)."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        url: SecretStr,
        *,
        name: str = "alertmanager",
        firing_ttl: dt.timedelta = dt.timedelta(days=365),
        generator_url: str | None = None,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        rules: EngineConfig = SPEC_RULES,
        timeout: float = 10.0,
        memory: int = 10_000,
    ) -> None:
        redact_httpx_logs()
        self._client = client
        self._url = url
        self._endpoint = url.get_secret_value().rstrip("/") + "/api/v2/alerts"
        self._name = name
        self._ttl = firing_ttl
        self._generator_url = generator_url
        self._now = now
        self._rules = rules
        self._timeout = timeout
        self._memory = memory
        self._last: OrderedDict[str, str] = OrderedDict()
        self._scrub = Scrubber([url, self._endpoint])

    @property
    def name(self) -> str:
        return self._name

    def __repr__(self) -> str:
        return f"AlertmanagerReceiver(name={self._name!r}, url=SecretStr('**********'))"

    def alerts(self, record: AlertRecord, now: dt.datetime) -> list[dict[str, Any]]:
        """The alerts one request carries for ``record`` (see the module notes)."""

        def make(severity: str, resolved: bool) -> dict[str, Any]:
            return am_alert(
                record,
                now=now,
                firing_ttl=self._ttl,
                severity=severity,
                resolved=resolved,
                generator_url=self._generator_url,
                rules=self._rules,
            )

        last = self._last.get(record.dedup_key)
        out = [make(record.severity, record.status == "resolved")]
        if record.status == "firing":
            if last is not None and last != record.severity:
                out.append(make(last, True))
        elif last is None:
            out += [make(s, True) for s in SEVERITIES if s != record.severity]
        elif last != record.severity:
            out.append(make(last, True))
        return out

    async def deliver(self, record: AlertRecord) -> Delivery:
        now = self._now()
        delivery = await post(
            self._client,
            receiver=self._name,
            url=self._endpoint,
            scrub=self._scrub,
            json=self.alerts(record, now),
            request_timeout=self._timeout,
            now=lambda: now,
        )
        if delivery.ok:
            self._last.pop(record.dedup_key, None)
            if record.status == "firing":
                self._last[record.dedup_key] = record.severity
                while len(self._last) > self._memory:
                    self._last.popitem(last=False)
        return delivery
