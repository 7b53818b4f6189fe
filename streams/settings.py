"""Process settings from the environment (``STAKEWATCH_*``), validated at start-up.

A bad value fails before anything connects, with the environment variable named, so a
typo in a deployment shows up as one clear line instead of a stack trace minutes later.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from streams.broker import parse_broker_url

__all__ = ["Settings", "SettingsError", "load_settings"]

_PREFIX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,100}$")


class SettingsError(ValueError):
    """A setting is invalid; the message starts with the environment variable's name."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STAKEWATCH_", extra="ignore")

    broker: str | None = Field(
        default=None, description="kafka://HOST:PORT; unset = the embedded broker"
    )
    data_dir: Path = Field(default=Path(".stakewatch"), description="embedded-mode archive")
    topic_prefix: str = "stakewatch"
    group_id: str = "stakewatch-worker"
    web_host: str = "127.0.0.1"
    web_port: int = Field(default=6066, ge=0, le=65535)
    snapshot_interval: float = Field(default=5.0, gt=0, description="seconds between snapshots")
    session_timeout: float = Field(default=6.0, ge=1, le=300, description="group session, s")
    heartbeat_interval: float = Field(default=1.0, gt=0, le=60, description="heartbeat, s")

    @field_validator("broker")
    @classmethod
    def _broker(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        parse_broker_url(value)
        return value

    @field_validator("topic_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not _PREFIX.match(value):
            raise ValueError(f"{value!r} is not a valid topic prefix")
        return value

    @property
    def bootstrap(self) -> str | None:
        """aiokafka bootstrap string of an external broker, or None for the embedded one."""
        return parse_broker_url(self.broker) if self.broker else None


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment plus explicit overrides (CLI options win)."""
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**given)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = "STAKEWATCH_" + str(first["loc"][0]).upper() if first["loc"] else "STAKEWATCH"
        message = first["msg"].removeprefix("Value error, ")
        raise SettingsError(f"{name}: {message}") from None
