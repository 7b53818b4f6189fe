"""The pure exposure engine (SPEC §2–3): no Kafka, no clock, no I/O.

Its public surface, what adapters, queries and receivers import: the engine and its
outcome, the rule set (`EngineConfig`, `load_config`) and the fixed rules (`rules.py`:
severities, statuses, the threshold comparison, rounding), the alert record.
"""

from streams.engine.config import (
    DEFAULT_SENSITIVE,
    ConfigError,
    EngineConfig,
    SeverityRules,
    load_config,
)
from streams.engine.engine import Engine, OpenConflict, Outcome
from streams.engine.records import AlertRecord, Figures
from streams.engine.rules import (
    SEVERITIES,
    SEVERITY_RANK,
    STATUSES,
    Severity,
    Status,
    meets_threshold,
    shown_spend,
    shown_stake,
)

__all__ = [
    "DEFAULT_SENSITIVE",
    "SEVERITIES",
    "SEVERITY_RANK",
    "STATUSES",
    "AlertRecord",
    "ConfigError",
    "Engine",
    "EngineConfig",
    "Figures",
    "OpenConflict",
    "Outcome",
    "Severity",
    "SeverityRules",
    "Status",
    "load_config",
    "meets_threshold",
    "shown_spend",
    "shown_stake",
]
