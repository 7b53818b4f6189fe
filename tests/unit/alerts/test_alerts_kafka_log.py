"""The Kafka notification log's value format (the broker side is in
tests/integration/test_notification_log_kafka.py)."""

from __future__ import annotations

import orjson
import pytest
from alert_samples import SEED_FIRING, SEED_RESOLVED, make_record

from alerts.notification_log import SENDING, Notified, updated
from streams.agents.notification_log import decode_value, encode_value


def test_values_round_trip_including_intents_and_failures() -> None:
    value = updated(None, make_record(SEED_FIRING), "delivered", told=True)
    value = updated(value, make_record(SEED_RESOLVED), SENDING, told=False)
    failed = updated(None, make_record(SEED_FIRING), "failed: HTTP 400 invalid_payload", False)
    for v in (value, failed, Notified(None, None, None)):
        assert decode_value(encode_value(v)) == v


@pytest.mark.parametrize(
    "raw",
    [
        b"{}",
        b"[]",
        b"not json",
        orjson.dumps({"v": 2, "status": None, "severity": None, "event_id": None, "handled": []}),
        orjson.dumps({"v": 1, "status": "open", "severity": None, "event_id": None, "handled": []}),
        orjson.dumps(
            {"v": 1, "status": None, "severity": None, "event_id": None, "handled": [["e", "x"]]}
        ),
    ],
)
def test_anything_else_is_refused(raw: bytes) -> None:
    with pytest.raises((ValueError, KeyError, TypeError)):
        decode_value(raw)
