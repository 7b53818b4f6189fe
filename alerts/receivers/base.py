"""The one interface every integration implements, and the HTTP plumbing they share.

A receiver turns one ``AlertRecord`` into one request and says how it went (``Delivery``);
it never raises for a failed request and never retries: retrying, rate limiting, ordering
and the notification log are the dispatcher's stages. Secrets (webhook URLs, routing keys)
are held as ``SecretStr`` and scrubbed from every answer and error text a receiver returns.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable
from urllib.parse import quote, urlsplit

import httpx
import orjson
from pydantic import SecretStr

from alerts.record import AlertRecord
from alerts.retry import PERMANENT, Verdict, classify

__all__ = ["Delivery", "Receiver", "Scrubber", "post", "redact_httpx_logs"]

#: How much of a receiver's answer is kept in a ``Delivery`` (and so in logs).
ANSWER_LIMIT = 300


@dataclass(frozen=True, slots=True)
class Delivery:
    """The outcome of one attempt (or, from the dispatcher, of all attempts) for one record."""

    receiver: str
    verdict: Verdict
    status: int | None = None
    detail: str = ""  # the receiver's answer or the error, scrubbed and truncated
    attempts: int = 1
    gave_up: bool = False  # retries ran out of give-up time

    @property
    def ok(self) -> bool:
        return self.verdict.ok


@runtime_checkable
class Receiver(Protocol):
    """One integration: ``name`` is the receiver's name in routing and logs."""

    @property
    def name(self) -> str: ...

    async def deliver(self, record: AlertRecord) -> Delivery: ...


class Scrubber:
    """Replaces secret values (and, for URLs, their path and query) with ``***``."""

    __slots__ = ("_needles",)

    def __init__(self, secrets: Iterable[SecretStr | str | None]) -> None:
        needles: set[str] = set()
        for secret in secrets:
            if secret is None:
                continue
            value = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
            if not value:
                continue
            needles.update({value, quote(value, safe=""), quote(value)})
            parts = urlsplit(value)
            if parts.scheme and parts.netloc:
                for piece in (parts.path, parts.query, parts.netloc.rpartition("@")[0]):
                    if len(piece) > 3:
                        needles.add(piece)
        # Longest first, so a URL is replaced whole before its path is.
        self._needles = tuple(sorted(needles, key=len, reverse=True))

    def __call__(self, text: str) -> str:
        for needle in self._needles:
            text = text.replace(needle, "***")
        return text

    def __repr__(self) -> str:
        return f"Scrubber({len(self._needles)} secrets)"


class _RedactUrls(logging.Filter):
    """httpx logs every request at INFO with its full URL (``HTTP Request: POST https://…``);
    for a Slack webhook the URL *is* the secret. Keep scheme and host, drop the rest."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and any(isinstance(a, httpx.URL) for a in args):
            record.args = tuple(
                f"{a.scheme}://{a.host}{f':{a.port}' if a.port else ''}/***"
                if isinstance(a, httpx.URL)
                else a
                for a in args
            )
        return True


def redact_httpx_logs() -> None:
    """Install the URL redaction on httpx's logger (idempotent; receivers call it)."""
    logger = logging.getLogger("httpx")
    if not any(isinstance(f, _RedactUrls) for f in logger.filters):
        logger.addFilter(_RedactUrls())


async def post(
    client: httpx.AsyncClient,
    *,
    receiver: str,
    url: str,
    scrub: Callable[[str], str],
    json: Any = None,
    content: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    request_timeout: float | None = None,
    now: Callable[[], dt.datetime] | None = None,
) -> Delivery:
    """POST and classify. Network errors become ``Delivery(status=None)``; never raises
    ``httpx`` errors, and never lets the URL or a secret into ``detail``."""
    body = content if content is not None else orjson.dumps(json)
    hdrs = {"Content-Type": "application/json", **(headers or {})}
    try:
        response = await client.post(
            url,
            content=body,
            headers=hdrs,
            timeout=request_timeout if request_timeout is not None else httpx.USE_CLIENT_DEFAULT,
        )
    except httpx.HTTPError as exc:
        # Transport errors are retried. str(exc) of some names the URL: scrubbed.
        reason = scrub(f"{type(exc).__name__}: {exc}".strip().rstrip(":"))
        return Delivery(receiver, classify(None), None, reason[:ANSWER_LIMIT])
    except Exception as exc:
        # Not a transport failure: a malformed URL (httpx.InvalidURL, a port out of range
        # surfacing as an ExceptionGroup from anyio, …) never gets better by retrying.
        reason = scrub(f"{type(exc).__name__}: {exc}")
        return Delivery(receiver, PERMANENT, None, reason[:ANSWER_LIMIT])
    try:
        text = response.text
    except (UnicodeDecodeError, LookupError):
        text = repr(response.content[:ANSWER_LIMIT])
    answer = scrub(" ".join(text.split()))[:ANSWER_LIMIT]
    verdict = classify(response.status_code, response.headers, now=now() if now else None)
    return Delivery(
        receiver, verdict, response.status_code, f"HTTP {response.status_code} {answer}"
    )
