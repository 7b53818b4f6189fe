"""Kafka SASL/SSL settings: validated with the variable named, turned into the aiokafka
options every client gets, and the password never shown (repr, errors, logs)."""

from __future__ import annotations

import io
import logging
import shutil
import ssl
import subprocess
from pathlib import Path

import pytest
import structlog
from pydantic import ValidationError

from streams.kafka import clients as kafka
from streams.kafka.clients import client_options, make_admin, make_consumer, make_producer
from streams.kafka.connect import broker_session
from streams.kafka.rebuild import request_rebuild
from streams.kafka.tail import tail_alerts
from streams.kafka.topics import TopicNames, TopicSpec, ensure_topics
from streams.logging import configure_logging, get_logger
from streams.settings import Settings, SettingsError, load_settings

PASSWORD = "pa55-Word-0f-the-cluster"
KEY_PASSWORD = "k3y-pa55phrase"
SASL = {
    "security_protocol": "SASL_SSL",
    "sasl_mechanism": "SCRAM-SHA-512",
    "sasl_username": "stakewatch",
    "sasl_password": PASSWORD,
}


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("STAKEWATCH_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A throwaway self-signed CA/leaf (one cert), its key, and the key encrypted."""
    out = tmp_path_factory.mktemp("certs")
    paths = {name: out / f"{name}.pem" for name in ("cert", "key", "encrypted_key")}
    if shutil.which("openssl"):
        _openssl(paths)
    else:
        _cryptography(paths)
    (out / "garbage.pem").write_text("not a certificate\n")
    paths["garbage"] = out / "garbage.pem"
    return paths


def _openssl(paths: dict[str, Path]) -> None:
    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)

    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", str(paths["key"]), "-out", str(paths["cert"]), "-days", "1",
        "-subj", "/CN=kafka.test")  # fmt: skip
    run("pkey", "-in", str(paths["key"]), "-aes256", "-passout", f"pass:{KEY_PASSWORD}",
        "-out", str(paths["encrypted_key"]))  # fmt: skip


def _cryptography(paths: dict[str, Path]) -> None:
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kafka.test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    paths["cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem, pkcs8 = serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8
    paths["key"].write_bytes(key.private_bytes(pem, pkcs8, serialization.NoEncryption()))
    encrypted = serialization.BestAvailableEncryption(KEY_PASSWORD.encode())
    paths["encrypted_key"].write_bytes(key.private_bytes(pem, pkcs8, encrypted))


def _error(monkeypatch: pytest.MonkeyPatch, **env: str) -> str:
    """The one-line error `load_settings` gives for these environment variables."""
    for name, value in env.items():
        monkeypatch.setenv(f"STAKEWATCH_{name.upper()}", value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert "\n" not in message and PASSWORD not in message
    return message


# -- validation -------------------------------------------------------------------------------


def test_the_default_is_plaintext_with_no_extra_options() -> None:
    assert client_options(Settings()) == {"security_protocol": "PLAINTEXT"}


def test_lower_case_and_blank_values_are_read_as_kafka_spells_them(monkeypatch) -> None:
    monkeypatch.setenv("STAKEWATCH_SECURITY_PROTOCOL", "sasl_ssl")
    monkeypatch.setenv("STAKEWATCH_SASL_MECHANISM", "scram-sha-256")
    monkeypatch.setenv("STAKEWATCH_SASL_USERNAME", "u")
    monkeypatch.setenv("STAKEWATCH_SASL_PASSWORD", PASSWORD)
    monkeypatch.setenv("STAKEWATCH_SSL_CAFILE", "")
    s = load_settings()
    assert (s.security_protocol, s.sasl_mechanism, s.ssl_cafile) == (
        "SASL_SSL",
        "SCRAM-SHA-256",
        None,
    )
    monkeypatch.setenv("STAKEWATCH_SECURITY_PROTOCOL", "")
    for name in ("MECHANISM", "USERNAME", "PASSWORD"):
        monkeypatch.setenv(f"STAKEWATCH_SASL_{name}", " ")
    assert load_settings().security_protocol == "PLAINTEXT"


@pytest.mark.parametrize(
    ("env", "starts"),
    [
        ({"security_protocol": "TLS"}, "STAKEWATCH_SECURITY_PROTOCOL: Input should be"),
        (
            {**SASL, "sasl_mechanism": "GSSAPI"},
            "STAKEWATCH_SASL_MECHANISM: Input should be 'PLAIN'",
        ),
        (
            {**SASL, "sasl_mechanism": ""},
            "STAKEWATCH_SASL_MECHANISM: required when STAKEWATCH_SECURITY_PROTOCOL is SASL_SSL",
        ),
        (
            {**SASL, "sasl_username": ""},
            "STAKEWATCH_SASL_USERNAME: required when STAKEWATCH_SECURITY_PROTOCOL is SASL_SSL",
        ),
        (
            {**SASL, "security_protocol": "SASL_PLAINTEXT", "sasl_password": ""},
            "STAKEWATCH_SASL_PASSWORD: required when "
            "STAKEWATCH_SECURITY_PROTOCOL is SASL_PLAINTEXT",
        ),
        (
            {**SASL, "security_protocol": "PLAINTEXT", "sasl_mechanism": ""},
            "STAKEWATCH_SASL_USERNAME: set, but STAKEWATCH_SECURITY_PROTOCOL is PLAINTEXT",
        ),
        (
            {"security_protocol": "SSL", "sasl_password": PASSWORD},
            "STAKEWATCH_SASL_PASSWORD: set, but STAKEWATCH_SECURITY_PROTOCOL is SSL",
        ),
        (
            {"ssl_cafile": "/no/such/ca.pem"},
            "STAKEWATCH_SSL_CAFILE: '/no/such/ca.pem' is not a readable file",
        ),
        (
            {"security_protocol": "SSL", "ssl_keyfile": "/no/such/key.pem"},
            "STAKEWATCH_SSL_KEYFILE: '/no/such/key.pem' is not a readable file",
        ),
    ],
    ids=[
        "bad-protocol",
        "bad-mechanism",
        "sasl-without-mechanism",
        "sasl-without-username",
        "sasl-without-password",
        "credentials-on-plaintext",
        "password-on-ssl",
        "missing-cafile",
        "missing-keyfile",
    ],
)
def test_a_bad_security_setting_is_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], starts: str
) -> None:
    assert _error(monkeypatch, **env).startswith(starts)


def test_tls_files_on_a_protocol_without_tls_are_refused(monkeypatch, certs) -> None:
    env = {**SASL, "security_protocol": "SASL_PLAINTEXT", "ssl_cafile": str(certs["cert"])}
    message = _error(monkeypatch, **env)
    assert message.startswith(
        "STAKEWATCH_SSL_CAFILE: set, but STAKEWATCH_SECURITY_PROTOCOL is SASL_PLAINTEXT"
    )


def test_a_key_without_its_certificate_is_refused(monkeypatch, certs) -> None:
    message = _error(monkeypatch, security_protocol="SSL", ssl_keyfile=str(certs["key"]))
    assert message == "STAKEWATCH_SSL_KEYFILE: needs STAKEWATCH_SSL_CERTFILE"


# -- the options every client gets -------------------------------------------------------------


def test_sasl_ssl_gives_a_verifying_context_and_the_credentials() -> None:
    options = client_options(Settings(**SASL))
    assert set(options) == {
        "security_protocol",
        "ssl_context",
        "sasl_mechanism",
        "sasl_plain_username",
        "sasl_plain_password",
    }
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_username"] == "stakewatch"
    assert options["sasl_plain_password"] == PASSWORD  # what aiokafka sends
    assert PASSWORD not in repr(options)


def test_sasl_plaintext_has_no_tls() -> None:
    options = client_options(Settings(**{**SASL, "security_protocol": "SASL_PLAINTEXT"}))
    assert "ssl_context" not in options
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"


def test_ssl_with_a_private_ca_and_a_client_certificate(certs) -> None:
    settings = Settings(
        security_protocol="SSL",
        ssl_cafile=certs["cert"],
        ssl_certfile=certs["cert"],
        ssl_keyfile=certs["key"],
    )
    options = client_options(settings)
    assert set(options) == {"security_protocol", "ssl_context"}
    cas = options["ssl_context"].get_ca_certs()
    assert [dict(x[0] for x in ca["subject"]) for ca in cas] == [{"commonName": "kafka.test"}]


def test_an_encrypted_key_loads_with_its_password(certs) -> None:
    settings = Settings(
        security_protocol="SSL",
        ssl_certfile=certs["cert"],
        ssl_keyfile=certs["encrypted_key"],
        ssl_key_password=KEY_PASSWORD,
    )
    assert isinstance(client_options(settings)["ssl_context"], ssl.SSLContext)
    assert KEY_PASSWORD not in repr(settings)


def test_an_encrypted_key_without_its_password_fails_instead_of_prompting(certs) -> None:
    settings = Settings(
        security_protocol="SSL", ssl_certfile=certs["cert"], ssl_keyfile=certs["encrypted_key"]
    )
    with pytest.raises(SettingsError, match="STAKEWATCH_SSL_KEY_PASSWORD"):
        client_options(settings)


def test_a_file_that_is_not_a_certificate_is_named(certs) -> None:
    settings = Settings(security_protocol="SSL", ssl_cafile=certs["garbage"])
    with pytest.raises(SettingsError, match=r"^STAKEWATCH_SSL_CAFILE: cannot load"):
        client_options(settings)
    settings = Settings(security_protocol="SSL", ssl_certfile=certs["garbage"])
    with pytest.raises(SettingsError, match=r"^STAKEWATCH_SSL_CERTFILE / STAKEWATCH_SSL_KEYFILE"):
        client_options(settings)


async def test_every_factory_hands_the_options_to_aiokafka() -> None:
    settings = Settings(**SASL)
    consumer = make_consumer("kafka.test:9093", settings, group_id=None)
    producer = make_producer("kafka.test:9093", client_options(settings), linger_ms=5)
    admin = make_admin("kafka.test:9093", settings)
    try:
        for client in (consumer._client, producer.client, admin._client):
            assert client._security_protocol == "SASL_SSL"
            assert isinstance(client._ssl_context, ssl.SSLContext)
            assert client._sasl_mechanism == "SCRAM-SHA-512"
            assert client._sasl_plain_username == "stakewatch"
            assert client._sasl_plain_password == PASSWORD
    finally:
        await consumer.stop()
        await producer.stop()
        await admin.close()


def test_an_option_given_twice_is_a_bug() -> None:
    with pytest.raises(TypeError, match="security_protocol"):
        make_admin("kafka.test:9093", Settings(), security_protocol="SSL")


async def test_an_external_broker_connection_carries_the_options() -> None:
    async with broker_session(Settings(broker="kafka://kafka.test:9093", **SASL)) as conn:
        assert conn.client_options["security_protocol"] == "SASL_SSL"
        assert conn.client_options["sasl_plain_password"] == PASSWORD


class _Reached(Exception):
    pass


async def test_commands_pass_the_options_to_their_clients(monkeypatch) -> None:
    """ensure_topics, `stakewatch alerts` and `stakewatch rebuild` build their clients with
    the connection's options."""
    options = client_options(Settings(**SASL))
    seen: list[tuple[str, object]] = []

    def spy(name: str):
        def factory(bootstrap: str, security: object = None, **kw: object):
            seen.append((name, security))
            raise _Reached

        return factory

    monkeypatch.setattr("streams.kafka.topics.make_admin", spy("admin"))
    monkeypatch.setattr("streams.kafka.tail.make_consumer", spy("consumer"))
    with pytest.raises(_Reached):
        await ensure_topics("kafka.test:9093", [TopicSpec("t", 1)], options)
    with pytest.raises(_Reached):
        await tail_alerts("kafka.test:9093", "t", io.BytesIO(), client=options)
    with pytest.raises(_Reached):
        await request_rebuild("kafka.test:9093", TopicNames("p"), client=options)
    assert seen == [("admin", options), ("consumer", options), ("admin", options)]


#: Modules that may build aiokafka clients themselves: the factory, and the benchmark's
#: peers (raw clients on a private plaintext broker, measured as they are).
RAW_CLIENTS_ALLOWED = {
    "streams/kafka/clients.py",
    "streams/bench/stream.py",
    "streams/bench/peers.py",
}


def test_every_runtime_kafka_client_is_built_by_the_factory() -> None:
    """No module calls AIOKafkaConsumer/Producer/AdminClient itself: a client built without
    ``streams.kafka.clients`` would skip the SASL/SSL options (the TLS integration test catches the
    ones that run; this catches the rest, e.g. a path only a rebalance takes)."""
    import ast

    root = Path(__file__).resolve().parents[2]
    raw = {"AIOKafkaConsumer", "AIOKafkaProducer", "AIOKafkaAdminClient"}
    found = []
    for path in sorted([*root.glob("streams/**/*.py"), *root.glob("alerts/**/*.py")]):
        name = path.relative_to(root).as_posix()
        if name in RAW_CLIENTS_ALLOWED:
            continue
        for node in ast.walk(ast.parse(path.read_text(), name)):
            if isinstance(node, ast.Call):
                func = node.func
                called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
                if called in raw:
                    found.append(f"{name}:{node.lineno} {called}")
    assert found == []


# -- the password never shows -------------------------------------------------------------------


def test_the_password_is_not_in_the_settings_repr_or_dump() -> None:
    settings = Settings(**SASL, ssl_cafile=None)
    for text in (repr(settings), str(settings), settings.model_dump_json()):
        assert PASSWORD not in text
    assert PASSWORD not in repr(kafka.client_options(settings))


def test_the_password_is_not_in_a_validation_error() -> None:
    """Settings() directly (not load_settings) raises pydantic's error: no input echoed."""
    with pytest.raises(ValidationError) as caught:
        Settings(**{**SASL, "sasl_mechanism": None, "ssl_certfile": "/no/such"})
    assert PASSWORD not in str(caught.value)
    assert PASSWORD not in repr(caught.value.errors())


def test_the_password_is_masked_in_logs_however_it_is_logged() -> None:
    """Set without the environment (so only client_options can tell the redactor), then
    logged as an options dict, in a message, and in a stdlib library's formatted line."""
    stream = io.StringIO()
    configure_logging("DEBUG", fmt="json", stream=stream, environ={})
    try:
        options = client_options(Settings(**SASL))
        log = get_logger("test")
        log.info("kafka client", options=options)
        log.warning(f"authentication failed with {options['sasl_plain_password']}")
        logging.getLogger("aiokafka.conn").error("SASL PLAIN %s:%s", "stakewatch", PASSWORD)
    finally:
        root = logging.getLogger()
        for handler in list(root.handlers):
            root.removeHandler(handler)
        structlog.reset_defaults()
    text = stream.getvalue()
    assert text.count("\n") == 3
    assert PASSWORD not in text
    assert "***" in text


# -- the documented webhook receiver -------------------------------------------------------------


def test_the_documented_webhook_receiver_accepts_stakewatch_signatures_once(
    monkeypatch, capsys
) -> None:
    """docs/security.md's stdlib receiver, run as written, against the webhook receiver's
    real headers: fresh ones verify and are acted on once per webhook-id, a replay after
    the tolerance window, a tampered body or a forged signature are refused."""
    import base64
    import re
    import threading
    import time
    import urllib.error
    import urllib.request

    from pydantic import SecretStr

    from alerts.receivers.webhook import WebhookReceiver
    from alerts.record import AlertRecord

    secret = "whsec_" + base64.b64encode(b"k" * 32).decode()
    doc = (Path(__file__).resolve().parents[2] / "docs" / "security.md").read_text()
    (snippet,) = [b for b in re.findall(r"```python\n(.*?)```", doc, re.S) if "class Receiver" in b]
    monkeypatch.setenv("STAKEWATCH_WEBHOOK_SECRET", secret)
    scope: dict = {"__name__": "docs_security_snippet"}
    exec(compile(snippet, "docs/security.md", "exec"), scope)

    record = AlertRecord.model_validate(
        {
            "dedup_key": "google|scale-ai|meta",
            "status": "firing",
            "severity": "critical",
            "client": "google",
            "vendor": "scale-ai",
            "rival": "meta",
            "stake": 49.0,
            "controlled": False,
            "pending": False,
            "spend_365d": 150_000_000.0,
            "event_id": "e-1",
            "event_time": "2025-06-12T14:00:00Z",
        }
    )
    hook = WebhookReceiver(None, SecretStr("http://unused.test/"), SecretStr(secret))  # type: ignore[arg-type]
    body = record.to_json()
    headers = hook.headers(record, body)
    verify = scope["verify"]
    assert verify(body, headers, secret)
    assert not verify(body + b" ", headers, secret)
    assert not verify(body, headers, "whsec_" + base64.b64encode(b"x" * 32).decode())
    assert not verify(body, headers, secret, now=time.time() + 5 * 60 + 5)  # a late replay

    server = scope["HTTPServer"](("127.0.0.1", 0), scope["Receiver"])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"

    def post(headers: dict[str, str], data: bytes = body) -> int:
        request = urllib.request.Request(url, data, headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code

    try:
        assert post(headers) == 204
        assert post(headers) == 204  # the same request again: accepted, not acted on twice
        assert post(headers, body.replace(b"critical", b"high    ")) == 401
        forged = {**headers, "webhook-signature": "v1," + base64.b64encode(b"0" * 32).decode()}
        assert post(forged) == 401
        stale = dict(headers, **{"webhook-timestamp": str(int(time.time()) - 3600)})
        assert post(stale) == 401
    finally:
        server.shutdown()
        server.server_close()
    assert capsys.readouterr().out.count("alert google|scale-ai|meta firing critical") == 1
