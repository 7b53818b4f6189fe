"""Process settings from the environment (``STAKEWATCH_*``), validated at start-up.

A bad value fails before anything connects, with the environment variable named, so a
typo in a deployment shows up as one clear line instead of a stack trace minutes later.
The Kafka security settings (``security_protocol``, ``sasl_*``, ``ssl_*``) are checked
together: credentials set for a protocol that would not use them are an error, not a
silently plaintext connection (docs/security.md). Secrets are ``SecretStr``: masked in
``repr`` and never echoed in an error.
"""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import (
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from streams.kafka.broker import parse_broker_url
from streams.kafka.running import user_state_dir

if TYPE_CHECKING:
    from streams.api.auth import Access

__all__ = ["Settings", "SettingsError", "load_settings"]

_PREFIX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,100}$")
ENV_PREFIX = "STAKEWATCH_"

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
_SASL_FIELDS = ("sasl_mechanism", "sasl_username", "sasl_password")
_SSL_FIELDS = ("ssl_cafile", "ssl_certfile", "ssl_keyfile", "ssl_key_password")


class SettingsError(ValueError):
    """A setting is invalid; the message starts with the environment variable's name."""


class Settings(BaseSettings):
    # hide_input_in_errors: a ValidationError would otherwise repr the raw input, secrets too.
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="ignore", hide_input_in_errors=True
    )

    broker: str | None = Field(
        default=None, description="kafka://HOST:PORT; unset = the embedded broker"
    )
    # One per user, wherever a command runs from (platformdirs' user state dir, e.g.
    # ~/.local/state/stakewatch): a directory relative to the working directory sent a
    # replay run elsewhere to a private broker that no worker saw.
    data_dir: Path = Field(
        default_factory=user_state_dir, description="embedded-mode archive; group member slots"
    )
    topic_prefix: str = "stakewatch"
    group_id: str = "stakewatch-worker"
    web_host: str = "127.0.0.1"
    web_port: int = Field(default=6066, ge=0, le=65535)
    snapshot_interval: float = Field(default=5.0, gt=0, description="seconds between snapshots")
    session_timeout: float = Field(default=6.0, ge=1, le=300, description="group session, s")
    heartbeat_interval: float = Field(default=1.0, gt=0, le=60, description="heartbeat, s")
    merge_grace_ms: int = Field(
        default=200,
        ge=0,
        le=10_000,
        description="live edge: how long a record waits for earlier ones on idle partitions",
    )
    api_token: SecretStr | None = Field(
        default=None, description="bearer token every /v1 request must carry; unset = none"
    )
    snapshot_key: SecretStr | None = Field(
        default=None,
        description="signs snapshots (HMAC-SHA256); unset = a key file under data_dir in "
        "embedded mode, no snapshots with an external broker",
    )
    api_tokens: Path | None = Field(
        default=None, description="TOML file of scoped tokens (hashes): docs/security.md"
    )
    replication_factor: int = Field(
        default=1, ge=1, le=16, description="replicas of each topic it creates (3 on a cluster)"
    )
    _grants: tuple[Any, ...] = PrivateAttr(default=())  # streams.api.tokens.Grant
    # Kafka client security (external brokers only; the embedded one is loopback plaintext).
    security_protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = Field(default=None, description="CA bundle; unset = system CAs")
    ssl_certfile: Path | None = Field(default=None, description="client certificate (mTLS)")
    ssl_keyfile: Path | None = Field(default=None, description="client key, if not in certfile")
    ssl_key_password: SecretStr | None = None

    @field_validator("broker")
    @classmethod
    def _broker(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        parse_broker_url(value)
        return value

    @field_validator("api_token")
    @classmethod
    def _token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        secret = value.get_secret_value()
        if secret != secret.strip() or not secret.isascii() or not secret.isprintable():
            raise ValueError("must be printable ASCII without surrounding spaces")
        return value

    @field_validator("snapshot_key")
    @classmethod
    def _snapshot_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        secret = value.get_secret_value()
        if len(secret) < 32 or not secret.isascii() or not secret.isprintable() or " " in secret:
            raise ValueError(
                "must be at least 32 printable ASCII characters without spaces "
                "(e.g. the output of `openssl rand -hex 32`; value not shown)"
            )
        return value

    @field_validator("api_tokens", mode="before")
    @classmethod
    def _tokens_path(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _tokens_file(self) -> Settings:
        """Read the tokens file now, so a bad one stops start-up naming the variable."""
        if self.api_tokens is not None:
            from streams.api.tokens import TokenFileError, read_token_file  # web-only: lazy

            try:
                self._grants = read_token_file(self.api_tokens)
            except TokenFileError as exc:
                raise ValueError(f"{_env_name('api_tokens')}: {exc}") from None
        return self

    def web_access(self) -> Access:
        """Who may read the API. Refuses (``SettingsError``) to serve a non-loopback
        address with no token: the API says who depends on whom."""
        from streams.api.auth import Access

        token = self.api_token.get_secret_value() if self.api_token else None
        access = Access.of(token, self._grants)
        if not access.required and not _loopback(self.web_host):
            raise SettingsError(
                f"{_env_name('web_host')}: {self.web_host!r} is not a loopback address, and "
                f"neither {_env_name('api_token')} nor {_env_name('api_tokens')} is set; "
                "the API would be open to the network"
            )
        return access

    @field_validator("security_protocol", "sasl_mechanism", mode="before")
    @classmethod
    def _upper(cls, value: object, info: ValidationInfo) -> object:
        """`sasl_ssl` and `scram-sha-512` are what people type; Kafka spells them upper-case.
        Empty means unset (compose files write `X=`)."""
        if isinstance(value, str):
            unset = "PLAINTEXT" if info.field_name == "security_protocol" else None
            return value.strip().upper() or unset
        return value

    @field_validator("sasl_username", "sasl_password", *_SSL_FIELDS, mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        """An empty environment variable means "not set" (compose files write `X=`)."""
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("ssl_cafile", "ssl_certfile", "ssl_keyfile")
    @classmethod
    def _readable(cls, value: Path | None) -> Path | None:
        if value is not None and not (value.is_file() and os.access(value, os.R_OK)):
            raise ValueError(f"{str(value)!r} is not a readable file")
        return value

    @model_validator(mode="after")
    def _security(self) -> Settings:
        """Cross-field rules; each message starts with the variable to fix."""
        protocol = self.security_protocol
        name = _env_name
        if protocol.startswith("SASL_"):
            for field in _SASL_FIELDS:
                if getattr(self, field) is None:
                    raise ValueError(f"{name(field)}: required when {_protocol_is(protocol)}")
        else:
            for field in _SASL_FIELDS:
                if getattr(self, field) is not None:
                    raise ValueError(
                        f"{name(field)}: set, but {_protocol_is(protocol)}, which sends no "
                        f"credentials; use SASL_SSL (or SASL_PLAINTEXT)"
                    )
        if not protocol.endswith("SSL"):
            for field in _SSL_FIELDS:
                if getattr(self, field) is not None:
                    raise ValueError(
                        f"{name(field)}: set, but {_protocol_is(protocol)}, which does not "
                        f"use TLS; use SSL or SASL_SSL"
                    )
        if self.ssl_keyfile is not None and self.ssl_certfile is None:
            raise ValueError(f"{name('ssl_keyfile')}: needs {name('ssl_certfile')}")
        if self.ssl_key_password is not None and self.ssl_certfile is None:
            raise ValueError(f"{name('ssl_key_password')}: needs {name('ssl_certfile')}")
        return self

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
        return Settings(**given)  # type: ignore[arg-type]  # values checked by the model
    except ValidationError as exc:
        first = exc.errors()[0]
        message = first["msg"].removeprefix("Value error, ")
        if not first["loc"]:  # a cross-field rule: its message names the variable itself
            raise SettingsError(message) from None
        raise SettingsError(f"{_env_name(str(first['loc'][0]))}: {message}") from None


def _loopback(host: str) -> bool:
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve anywhere


def _env_name(field: str) -> str:
    return ENV_PREFIX + field.upper()


def _protocol_is(protocol: Any) -> str:
    return f"{_env_name('security_protocol')} is {protocol}"
