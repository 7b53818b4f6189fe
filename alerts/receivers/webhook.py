"""Generic signed webhook: the SPEC §3 record as the JSON body, signed the Standard Webhooks
way, so that a captured request cannot be replayed later.

Each request carries ``webhook-id``, ``webhook-timestamp`` (Unix seconds of this attempt) and
``webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``. A verifier
refuses a timestamp more than five minutes from its clock, so a replay fails once that
window has passed; inside it, the receiver de-duplicates on ``webhook-id``, which is the
same for every attempt at one notification (derived from the record's dedup key, event id,
status and severity) while the timestamp is fresh per attempt. Signing is the official
``standardwebhooks`` package's; any of the spec's libraries verifies.

The secret is ``whsec_`` + base64 of the key (the spec's form). A secret without the prefix
(the form before Standard Webhooks) still works as raw key bytes, with a warning at start:
its receivers verify with ``Webhook(secret.encode())`` (docs/alerts.md, migrating).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import time
from collections.abc import Callable

import httpx
import structlog
from pydantic import SecretStr
from standardwebhooks import Webhook

from alerts.receivers.base import Delivery, Scrubber, post, redact_httpx_logs
from alerts.record import AlertRecord

__all__ = [
    "ID_HEADER",
    "SECRET_PREFIX",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "WebhookReceiver",
    "signing_key",
    "webhook_id",
]

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
SECRET_PREFIX = "whsec_"

log = structlog.get_logger("stakewatch.alerts")


def signing_key(secret: SecretStr | str) -> bytes:
    """The HMAC key a secret names: base64 after ``whsec_``, else the text's bytes as they
    are. A ValueError (that never holds the value) when ``whsec_`` is not followed by
    base64."""
    text = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
    if not text.startswith(SECRET_PREFIX):
        return text.encode()
    try:
        key = base64.b64decode(text.removeprefix(SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if not key:
        raise ValueError(
            f"starts with {SECRET_PREFIX} but the rest is not base64 (value not shown)"
        )
    return key


def webhook_id(record: AlertRecord) -> str:
    """The notification's id: the same for every attempt (and after a restart or a
    rebuild, which re-emit the same transition), different for every transition."""
    what = "\n".join((record.dedup_key, record.event_id, record.status, record.severity))
    return "msg_" + hashlib.sha256(what.encode()).hexdigest()[:32]


class WebhookReceiver:
    """POSTs the signed record to ``STAKEWATCH_WEBHOOK_URL``."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        url: SecretStr,
        secret: SecretStr,
        *,
        name: str = "webhook",
        timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        redact_httpx_logs()
        self._client = client
        self._url = url
        self._signer = Webhook(signing_key(secret))
        self._name = name
        self._timeout = timeout
        self._clock = clock
        self._scrub = Scrubber([url, secret])
        if not secret.get_secret_value().startswith(SECRET_PREFIX):
            log.warning(
                "webhook secret is not whsec_<base64>: its text is the key as it is",
                receiver=name,
            )

    @property
    def name(self) -> str:
        return self._name

    def __repr__(self) -> str:
        return (
            f"WebhookReceiver(name={self._name!r}, url=SecretStr('**********'), "
            "secret=SecretStr('**********'))"
        )

    def headers(self, record: AlertRecord, body: bytes) -> dict[str, str]:
        """The signature headers of one attempt (timestamp now)."""
        msg_id = webhook_id(record)
        sent = dt.datetime.fromtimestamp(int(self._clock()), dt.UTC)
        return {
            ID_HEADER: msg_id,
            TIMESTAMP_HEADER: str(int(sent.timestamp())),
            SIGNATURE_HEADER: self._signer.sign(msg_id, sent, body),
        }

    async def deliver(self, record: AlertRecord) -> Delivery:
        body = record.to_json()
        headers = {
            **self.headers(record, body),
            "X-Stakewatch-Dedup-Key": record.dedup_key,
            "User-Agent": "stakewatch-alerts",
        }
        return await post(
            self._client,
            receiver=self._name,
            url=self._url.get_secret_value(),
            scrub=self._scrub,
            content=body,
            headers=headers,
            request_timeout=self._timeout,
        )
