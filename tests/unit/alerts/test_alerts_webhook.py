"""The webhook receiver signs per Standard Webhooks: what a local server captures verifies
with the spec's own library, a replay after the tolerance window or a tampered body does
not, and a retry keeps its id with a fresh timestamp (so receivers can de-duplicate)."""

from __future__ import annotations

import base64
import datetime as dt
import itertools
import time

import httpx
import pytest
import structlog
import time_machine
from alert_samples import SEED_FIRING, make_record
from pydantic import SecretStr
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from alerts.dispatcher import Channel, Dispatcher
from alerts.notification_log import InMemoryNotificationLog
from alerts.receivers import WebhookReceiver, webhook_id
from alerts.receivers.webhook import signing_key
from alerts.retry import RetryPolicy
from alerts.testing import Answer, FakeApi, FakeClock

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
FIRING = make_record(SEED_FIRING)
TOLERANCE = dt.timedelta(minutes=5)  # Standard Webhooks' default, the verifier's


async def _captured(client: httpx.AsyncClient, secret: str = SECRET, record=FIRING):
    async with FakeApi.webhook() as api:
        hook = WebhookReceiver(client, SecretStr(api.url), SecretStr(secret))
        assert (await hook.deliver(record)).ok
        (got,) = api.accepted
    return got


async def test_a_captured_request_verifies_with_standard_webhooks(client) -> None:
    got = await _captured(client)
    assert got.body == FIRING.to_json()  # the SPEC record, byte for byte
    assert Webhook(SECRET).verify(got.body, got.headers) == FIRING.to_dict()
    assert got.headers["webhook-id"] == webhook_id(FIRING)
    assert got.headers["webhook-signature"].startswith("v1,")
    assert abs(int(got.headers["webhook-timestamp"]) - time.time()) < 60
    assert got.headers["X-Stakewatch-Dedup-Key"] == FIRING.dedup_key


async def test_a_replay_after_the_tolerance_window_is_rejected(client) -> None:
    got = await _captured(client)
    sent = dt.datetime.fromtimestamp(int(got.headers["webhook-timestamp"]), dt.UTC)
    with time_machine.travel(sent + TOLERANCE - dt.timedelta(seconds=5), tick=False):
        Webhook(SECRET).verify(got.body, got.headers)  # inside it: dedupe by webhook-id
    with (
        time_machine.travel(sent + TOLERANCE + dt.timedelta(seconds=1), tick=False),
        pytest.raises(WebhookVerificationError, match="too old"),
    ):
        Webhook(SECRET).verify(got.body, got.headers)


async def test_a_tampered_body_a_moved_timestamp_or_another_secret_is_rejected(client) -> None:
    got = await _captured(client)
    tampered = got.body.replace(b'"critical"', b'"warning"')
    assert tampered != got.body
    with pytest.raises(WebhookVerificationError, match="signature"):
        Webhook(SECRET).verify(tampered, got.headers)
    moved = {**got.headers, "webhook-timestamp": str(int(got.headers["webhook-timestamp"]) + 1)}
    with pytest.raises(WebhookVerificationError, match="signature"):
        Webhook(SECRET).verify(got.body, moved)
    other = "whsec_" + base64.b64encode(b"another key of thirty-two bytes!").decode()
    with pytest.raises(WebhookVerificationError, match="signature"):
        Webhook(other).verify(got.body, got.headers)


async def test_a_retry_keeps_the_id_with_a_fresh_timestamp(client) -> None:
    """Through the dispatcher: a 500, then the retry; both signed, one id."""
    seconds = itertools.count(int(time.time()), 7)
    clock = FakeClock()
    async with FakeApi.webhook() as api:
        api.answer_next(Answer(500))
        hook = WebhookReceiver(
            client, SecretStr(api.url), SecretStr(SECRET), clock=lambda: next(seconds)
        )
        d = Dispatcher(
            [Channel(hook, RetryPolicy(jitter=0))],
            None,
            InMemoryNotificationLog(),
            sleep=clock.sleep,
            clock=clock,
        )
        await d.submit(FIRING)
        await d.join()
        first, retry = api.received
    assert (first.status, retry.status) == (500, 204)
    assert first.headers["webhook-id"] == retry.headers["webhook-id"] == webhook_id(FIRING)
    assert int(retry.headers["webhook-timestamp"]) == int(first.headers["webhook-timestamp"]) + 7
    for request in (first, retry):
        Webhook(SECRET).verify(request.body, request.headers)


def test_the_id_names_one_transition() -> None:
    resolved = make_record(SEED_FIRING, status="resolved")
    escalated = make_record(SEED_FIRING, severity="high")
    later = make_record(SEED_FIRING, event_id="seed-0099")
    ids = {webhook_id(r) for r in (FIRING, resolved, escalated, later)}
    assert len(ids) == 4
    assert webhook_id(make_record(SEED_FIRING)) == webhook_id(FIRING)  # after a restart too


async def test_an_old_style_secret_signs_with_its_text_and_says_so(client) -> None:
    """Migration: a secret without whsec_ is the raw key; Webhook(secret.encode()) verifies."""
    with structlog.testing.capture_logs() as logs:
        got = await _captured(client, secret="s3cret-from-before")
    Webhook(b"s3cret-from-before").verify(got.body, got.headers)
    (warning,) = [e for e in logs if e["log_level"] == "warning"]
    assert "whsec_" in warning["event"] and "s3cret" not in str(warning)


def test_a_whsec_secret_must_be_base64() -> None:
    assert signing_key(SecretStr(SECRET)) == b"0123456789abcdef0123456789abcdef"
    assert signing_key("plain") == b"plain"
    for bad in ("whsec_", "whsec_not*base64", "whsec_abc"):
        with pytest.raises(ValueError, match="not base64") as caught:
            signing_key(SecretStr(bad))
        assert bad not in str(caught.value) or bad == "whsec_"
