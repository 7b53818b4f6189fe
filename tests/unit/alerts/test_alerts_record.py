"""The alert record model: SPEC §3 shape in and out, validated at the boundary."""

from __future__ import annotations

import orjson
import pytest
from alert_samples import SEED_FIRING, SEED_RESOLVED
from pydantic import ValidationError

from alerts.record import AlertRecord


def test_round_trip_keeps_the_spec_shape_and_field_order() -> None:
    raw = orjson.dumps(SEED_FIRING)
    record = AlertRecord.from_json(raw)
    assert record.to_json() == raw
    assert list(record.to_dict()) == list(SEED_FIRING)


def test_record_is_frozen_and_parses_paths() -> None:
    record = AlertRecord.from_json(orjson.dumps(SEED_RESOLVED))
    assert record.paths[0].path == ("meta", "scale-ai")
    assert record.active_contracts == ()
    with pytest.raises(ValidationError):
        record.status = "firing"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"status": "open"}, "status"),
        ({"severity": "urgent"}, "severity"),
        ({"dedup_key": "google|scale-ai|openai"}, "dedup_key"),
        ({"stake": 120.0}, "stake"),
        ({"event_time": "2025-06-12T14:00:00"}, "event_time"),
        ({"extra": 1}, "extra"),
        ({"client": "Google"}, "client"),
    ],
)
def test_malformed_records_are_rejected_naming_the_field(change: dict, field: str) -> None:
    with pytest.raises(ValidationError) as info:
        AlertRecord.from_json(orjson.dumps({**SEED_FIRING, **change}))
    assert field in str(info.value)
