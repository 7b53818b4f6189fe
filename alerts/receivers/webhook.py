"""Generic signed webhook: the SPEC §3 record as the JSON body, signed with a shared secret.

``X-Stakewatch-Signature: sha256=<hex HMAC-SHA256 of the exact body bytes>``. Consumers
verify with ``verify_signature`` (constant-time) before parsing, and de-duplicate on
``(dedup_key, event_id, status, severity)``: delivery is at-least-once.
"""

from __future__ import annotations

import hashlib
import hmac

import httpx
from pydantic import SecretStr

from alerts.receivers.base import Delivery, Scrubber, post, redact_httpx_logs
from alerts.record import AlertRecord

__all__ = ["SIGNATURE_HEADER", "WebhookReceiver", "sign", "verify_signature"]

SIGNATURE_HEADER = "X-Stakewatch-Signature"
_PREFIX = "sha256="


def _secret_bytes(secret: SecretStr | str | bytes) -> bytes:
    if isinstance(secret, SecretStr):
        secret = secret.get_secret_value()
    return secret.encode() if isinstance(secret, str) else secret


def sign(body: bytes, secret: SecretStr | str | bytes) -> str:
    """The header value for ``body``: ``sha256=`` + hex HMAC-SHA256."""
    return _PREFIX + hmac.new(_secret_bytes(secret), body, hashlib.sha256).hexdigest()


def verify_signature(body: bytes, header: str | None, secret: SecretStr | str | bytes) -> bool:
    """True when ``header`` is the signature of ``body`` under ``secret`` (constant time)."""
    if not header or not header.startswith(_PREFIX):
        return False
    return hmac.compare_digest(sign(body, secret).encode(), header.strip().encode())


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
    ) -> None:
        redact_httpx_logs()
        self._client = client
        self._url = url
        self._secret = secret
        self._name = name
        self._timeout = timeout
        self._scrub = Scrubber([url, secret])

    @property
    def name(self) -> str:
        return self._name

    def __repr__(self) -> str:
        return (
            f"WebhookReceiver(name={self._name!r}, url=SecretStr('**********'), "
            "secret=SecretStr('**********'))"
        )

    async def deliver(self, record: AlertRecord) -> Delivery:
        body = record.to_json()
        headers = {
            SIGNATURE_HEADER: sign(body, self._secret),
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
