"""Seed-like alert records shared by the alert tests (a module, so tests can import it)."""

from __future__ import annotations

from typing import Any

from alerts.record import AlertRecord

# The seed case of SPEC §4 as the engine emits it (scenario scale-ai-2025).
SEED_FIRING: dict[str, Any] = {
    "dedup_key": "google|scale-ai|meta",
    "status": "firing",
    "severity": "critical",
    "client": "google",
    "vendor": "scale-ai",
    "rival": "meta",
    "stake": 49.0,
    "controlled": False,
    "pending": True,
    "paths": [{"path": ["meta", "scale-ai"], "stake": 49.0}],
    "active_contracts": ["c-google-scale-2024"],
    "data_classes": ["confidential_data", "internal_documents", "prototypes"],
    "spend_365d": 150000000.0,
    "event_id": "seed-0074",
    "event_time": "2025-06-12T14:00:00Z",
}
SEED_RESOLVED: dict[str, Any] = {
    **SEED_FIRING,
    "status": "resolved",
    "active_contracts": [],
    "data_classes": [],
    "event_id": "seed-0075",
    "event_time": "2025-06-13T16:00:00Z",
}


def make_record(base: dict[str, Any] | None = None, **changes: Any) -> AlertRecord:
    """A record from ``base`` (default: the seed firing) with ``changes``; keeps dedup_key
    in step with client/vendor/rival."""
    data = {**(base or SEED_FIRING), **changes}
    data["dedup_key"] = f"{data['client']}|{data['vendor']}|{data['rival']}"
    return AlertRecord.model_validate(data)
