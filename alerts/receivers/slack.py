"""Slack incoming webhook: a Block Kit message a risk lead can act on, plus a plain-text
``text`` fallback (notifications, screen readers, clients without blocks).

Threading: an incoming webhook cannot reply in a thread (it gets no message ``ts`` back), so
each later message of a conflict *refers* to its first one instead: it names the conflict's
``dedup_key`` and quotes the time and headline of the message that opened it ("Follow-up to
the alert of 2025-06-12 14:00 UTC: …"). Searching Slack for the ``dedup_key`` finds the whole
story. The receiver keeps, per ``dedup_key``, the opening message and the previous record
(bounded LRU, in memory); the previous record is what lets a resolution say *what* ended
("resolved: google ended c-google-scale-2024"). After a restart the memory is empty: the
message then says what the resolving record alone can tell.

Slack has no idempotency key, so a message whose post was cut short by a crash cannot be
checked after the restart: the dispatcher sends it again through ``redeliver``, which says
so in the message (``REPEAT_NOTE``) instead of posting a silent duplicate.
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import SecretStr

from alerts.format import (
    SPEC_RULES,
    format_money,
    format_paths,
    format_percent,
    headline,
    resolution_reason,
)
from alerts.receivers.base import Delivery, Scrubber, post, redact_httpx_logs
from alerts.record import SEVERITIES, AlertRecord
from streams.engine import EngineConfig

__all__ = ["REPEAT_NOTE", "SlackReceiver", "slack_message"]

_EMOJI = {"critical": ":rotating_light:", "high": ":warning:", "warning": ":large_yellow_circle:"}
_RESOLVED = ":white_check_mark:"
#: Said by a message sent again because an earlier post of it may have reached Slack.
REPEAT_NOTE = (
    "Sent again after a restart: Stakewatch stopped while posting this alert, "
    "so it may already be above."
)


@dataclass(frozen=True, slots=True)
class Opening:
    """The first message of a conflict episode, which later messages refer to."""

    event_time: str
    headline: str


def _when(record_time: str) -> str:
    t = dt.datetime.fromisoformat(record_time.replace("Z", "+00:00")).astimezone(dt.UTC)
    return t.strftime("%Y-%m-%d %H:%M UTC")


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _title(record: AlertRecord, previous: AlertRecord | None) -> str:
    if record.status == "resolved":
        return f"{_RESOLVED} {headline(record)}"
    emoji = _EMOJI[record.severity]
    if previous is not None and previous.status == "firing":
        if previous.severity != record.severity:
            up = SEVERITIES.index(record.severity) < SEVERITIES.index(previous.severity)
            verb = "Escalated" if up else "Downgraded"
            return f"{emoji} {verb} to {record.severity.upper()} (was {previous.severity.upper()})"
        return f"{emoji} Update, still {record.severity.upper()}"
    return f"{emoji} {headline(record)}"


def slack_message(
    record: AlertRecord,
    previous: AlertRecord | None = None,
    opening: Opening | None = None,
    *,
    rules: EngineConfig = SPEC_RULES,
    note: str = "",
) -> dict[str, Any]:
    """The webhook payload for ``record`` (pure; ``previous``/``opening`` from memory;
    ``rules``: the worker's rule set; ``note``: a line under the title, e.g. ``REPEAT_NOTE``)."""
    wanted = rules.sensitive_data_classes
    secret = [c for c in record.data_classes if c in wanted]
    other = [c for c in record.data_classes if c not in wanted]
    stake = format_percent(record.stake)
    basis = "announced only, pending" if record.pending else "closed holdings"
    control = f"{record.rival} controls {record.vendor}" if record.controlled else "no control"
    paths = format_paths(record) or ["(no path above 0.01%)"]
    contracts = ", ".join(record.active_contracts) or "none"
    data = ", ".join(secret) or "none"
    spend = format_money(record.spend_365d)
    title = _title(record, previous)
    reason = resolution_reason(record, previous, rules) if record.status == "resolved" else ""
    follow_up = ""
    if opening is not None:
        follow_up = f"Follow-up to the alert of {_when(opening.event_time)}: “{opening.headline}”"
    elif record.status == "resolved" or previous is not None:
        follow_up = f"Follow-up to the earlier alerts for {record.dedup_key}"
    footer = f"{record.dedup_key} · event {record.event_id} at {_when(record.event_time)}"

    lines = [title]
    if note:
        lines.append(note)
    if reason:
        lines.append(reason)
    if follow_up:
        lines.append(follow_up)
    lines += [
        f"Client: {record.client} · Vendor: {record.vendor} · Rival: {record.rival}",
        f"Effective stake: {stake} ({basis}; {control})",
        "Ownership: " + "; ".join(paths),
        f"Active contracts: {contracts}",
        f"Sensitive data: {data}" + (f" (other data: {', '.join(other)})" if other else ""),
        f"Spend, trailing 365 days: {spend}",
        footer,
    ]
    text = _cut("\n".join(lines), 3000)

    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _cut(title, 150), "emoji": True}}
    ]
    if note:
        blocks.append(_context(f":repeat: {_esc(note)}"))
    if reason:
        blocks.append(_section(f"*{_esc(reason)}*"))
    if follow_up:
        blocks.append(_context(f":leftwards_arrow_with_hook: {_esc(follow_up)}"))
    fields = [
        f"*Client*\n{record.client}",
        f"*Vendor*\n{record.vendor}",
        f"*Rival*\n{record.rival}",
        f"*Effective stake*\n{stake} · {basis}",
        f"*Control*\n{control}",
        f"*Spend, trailing 365 d*\n{spend}",
    ]
    blocks.append({"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in fields]})
    blocks.append(_section("*Ownership*\n" + "\n".join(f"`{_esc(p)}`" for p in paths)))
    data_text = f"*Sensitive data*\n{_esc(data)}"
    if other:
        data_text += f"\n_other data: {_esc(', '.join(other))}_"
    blocks.append(
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": _cut(f"*Active contracts*\n{_esc(contracts)}", 2000)},
                {"type": "mrkdwn", "text": _cut(data_text, 2000)},
            ],
        }
    )
    blocks.append(_context(_esc(footer)))
    return {"text": text, "blocks": blocks}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _cut(text, 3000)}}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": _cut(text, 3000)}]}


class SlackReceiver:
    """Posts to one Slack incoming webhook (``STAKEWATCH_SLACK_WEBHOOK_URL``)."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        webhook_url: SecretStr,
        *,
        name: str = "slack",
        rules: EngineConfig = SPEC_RULES,
        timeout: float = 10.0,
        memory: int = 10_000,
    ) -> None:
        redact_httpx_logs()
        self._client = client
        self._url = webhook_url
        self._name = name
        self._scrub = Scrubber([webhook_url])
        self._rules = rules
        self._timeout = timeout
        self._memory = memory
        self._previous: OrderedDict[str, tuple[AlertRecord, Opening | None]] = OrderedDict()

    @property
    def name(self) -> str:
        return self._name

    def __repr__(self) -> str:
        return f"SlackReceiver(name={self._name!r}, webhook_url=SecretStr('**********'))"

    def message(self, record: AlertRecord, note: str = "") -> dict[str, Any]:
        """The payload ``deliver`` would send now (uses and does not change the memory)."""
        previous, opening = self._previous.get(record.dedup_key, (None, None))
        if record.status == "firing" and (previous is None or previous.status == "resolved"):
            previous, opening = None, None  # a new episode: this is the opening message
        return slack_message(record, previous, opening, rules=self._rules, note=note)

    async def deliver(self, record: AlertRecord) -> Delivery:
        return await self._post(record, self.message(record))

    async def redeliver(self, record: AlertRecord) -> Delivery:
        """``deliver`` for a record an interrupted attempt may already have posted."""
        return await self._post(record, self.message(record, note=REPEAT_NOTE))

    async def _post(self, record: AlertRecord, payload: dict[str, Any]) -> Delivery:
        delivery = await post(
            self._client,
            receiver=self._name,
            url=self._url.get_secret_value(),
            scrub=self._scrub,
            json=payload,
            request_timeout=self._timeout,
            now=lambda: dt.datetime.now(dt.UTC),
        )
        if delivery.ok:
            self._remember(record)
        return delivery

    def _remember(self, record: AlertRecord) -> None:
        previous = self._previous.pop(record.dedup_key, None)
        opening: Opening | None
        if record.status == "firing" and (previous is None or previous[0].status == "resolved"):
            opening = Opening(record.event_time, headline(record))
        else:
            opening = previous[1] if previous is not None else None
        self._previous[record.dedup_key] = (record, opening)
        while len(self._previous) > self._memory:
            self._previous.popitem(last=False)
