"""Every aiokafka client the project makes, with the deployment's SASL/SSL settings applied.

A client built without them would connect in plaintext, or not at all, to a secured
cluster; routing every consumer, producer and admin client through these factories keeps
one place that knows the security settings. ``client_options(settings)`` turns them into
aiokafka keyword arguments once (the SSL context is built and checked here, so a bad
certificate fails at start-up naming its variable); callers pass that mapping, or the
settings themselves, to ``make_consumer`` / ``make_producer`` / ``make_admin``.

The embedded broker is plaintext on loopback: ``streams.kafka.connect`` passes these options only
to an external broker (``Connection.client_options``).

The SASL password reaches aiokafka as a ``str`` subclass whose ``repr`` is masked, and it
is added to the logging redactor, so neither a logged options dict nor a log line of a
library that echoes it shows the value.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.helpers import create_ssl_context

from streams.settings import Settings, SettingsError

__all__ = [
    "ClientOptions",
    "Security",
    "client_options",
    "make_admin",
    "make_consumer",
    "make_producer",
    "resolve",
]

ClientOptions = dict[str, Any]
Security = Settings | Mapping[str, Any] | None  # settings, ready options, or plaintext


class _Secret(str):
    """A str that aiokafka can use as a password but that never shows in a ``repr``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "'***'"


def client_options(settings: Settings) -> ClientOptions:
    """aiokafka keyword arguments for the security settings (validated in ``Settings``)."""
    protocol = settings.security_protocol
    options: ClientOptions = {"security_protocol": protocol}
    if protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = _ssl_context(settings)
    if protocol.startswith("SASL_"):
        assert settings.sasl_password is not None  # Settings requires it for SASL_*
        password = settings.sasl_password.get_secret_value()
        _mask_in_logs(password)
        options["sasl_mechanism"] = settings.sasl_mechanism
        options["sasl_plain_username"] = settings.sasl_username
        options["sasl_plain_password"] = _Secret(password)
    return options


def resolve(security: Security) -> ClientOptions:
    """Options from settings, from an options mapping, or none (plaintext)."""
    if security is None:
        return {}
    if isinstance(security, Settings):
        return client_options(security)
    return dict(security)


def make_consumer(bootstrap: str, security: Security = None, **kw: Any) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(bootstrap_servers=bootstrap, **_merge(security, kw))


def make_producer(bootstrap: str, security: Security = None, **kw: Any) -> AIOKafkaProducer:
    return AIOKafkaProducer(bootstrap_servers=bootstrap, **_merge(security, kw))


def make_admin(bootstrap: str, security: Security = None, **kw: Any) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(bootstrap_servers=bootstrap, **_merge(security, kw))


def _merge(security: Security, kw: dict[str, Any]) -> ClientOptions:
    """Security options plus the caller's; one given twice is a bug, not an override."""
    options = resolve(security)
    clash = options.keys() & kw.keys()
    if clash:
        raise TypeError(f"security options given twice: {', '.join(sorted(clash))}")
    return {**options, **kw}


def _ssl_context(settings: Settings) -> ssl.SSLContext:
    """aiokafka's context (hostname checked; system CAs unless ``ssl_cafile``), with the
    file that failed to load named. Without a key password, an encrypted key fails here
    instead of OpenSSL prompting on a terminal a worker does not have."""
    key_password = settings.ssl_key_password
    password: Any = key_password.get_secret_value() if key_password else _no_key_password
    try:
        context = create_ssl_context(cafile=settings.ssl_cafile)
    except (ssl.SSLError, OSError) as exc:
        raise SettingsError(
            f"STAKEWATCH_SSL_CAFILE: cannot load {str(settings.ssl_cafile)!r} as CA "
            f"certificates ({_reason(exc)})"
        ) from None
    if settings.ssl_certfile is not None:
        try:
            context.load_cert_chain(settings.ssl_certfile, settings.ssl_keyfile, password)
        except (ssl.SSLError, OSError, ValueError) as exc:
            key = settings.ssl_keyfile or settings.ssl_certfile
            hint = "" if key_password else "; an encrypted key needs STAKEWATCH_SSL_KEY_PASSWORD"
            raise SettingsError(
                f"STAKEWATCH_SSL_CERTFILE / STAKEWATCH_SSL_KEYFILE: cannot load the client "
                f"certificate {str(settings.ssl_certfile)!r} with key {str(key)!r} "
                f"({_reason(exc)}{hint})"
            ) from None
    return context


def _no_key_password() -> bytes:
    return b""


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason)
    return getattr(exc, "strerror", None) or type(exc).__name__


def _mask_in_logs(secret: str) -> None:
    """Add to the active redactor; before logging is configured, the environment variable
    (``*_PASSWORD``) is picked up by ``configure_logging`` itself."""
    from streams.logging import add_secrets

    with contextlib.suppress(RuntimeError):
        add_secrets(secret)
