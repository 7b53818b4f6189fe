"""The pure exposure engine (SPEC §2–3): no Kafka, no clock, no I/O."""

from streams.engine.config import ConfigError, EngineConfig, SeverityRules, load_config
from streams.engine.engine import Engine, OpenConflict, Outcome
from streams.engine.records import AlertRecord, Figures

__all__ = [
    "AlertRecord",
    "ConfigError",
    "Engine",
    "EngineConfig",
    "Figures",
    "OpenConflict",
    "Outcome",
    "SeverityRules",
    "load_config",
]
