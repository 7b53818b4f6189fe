"""Every command through TLS (issue #13, item 7): Debian's stunnel terminates TLS in front of
the embedded Tansu, which advertises only the stunnel address, so any Kafka client that
skips the TLS settings fails instead of quietly finding the plaintext port.

`stakewatch topics create`, `stakewatch worker` (stream worker, leases, snapshots written
and restored, reconciliation, delivery agent, notification log, and a signed webhook to a
local receiver), `stakewatch replay` and `stakewatch alerts` run with
`STAKEWATCH_SECURITY_PROTOCOL=SSL` and a throwaway CA made here.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import ipaddress
import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from standardwebhooks import Webhook

from alerts.testing import FakeApi
from streams.bench.chaos import WorkerProc
from streams.kafka.broker import EmbeddedBroker, free_port
from tests.integration.workers import wait_for

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "tests" / "fixtures" / "scale-ai-2025.ndjson"
STUNNEL = shutil.which("stunnel4") or shutil.which("stunnel")
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"tls-test-webhook-key-32-bytes!!!").decode()
SEED_RECORDS = 6  # four conflicts fire, two resolve


def _write_ca_and_server_cert(where: Path) -> Path:
    """A throwaway CA and a certificate for 127.0.0.1 it signed; returns the CA file and
    leaves server.pem / server.key beside it."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "stakewatch test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    (where / "ca.pem").write_bytes(ca.public_bytes(pem))
    (where / "server.pem").write_bytes(cert.public_bytes(pem))
    (where / "server.key").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    (where / "server.key").chmod(0o600)
    return where / "ca.pem"


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """(TLS bootstrap, CA file): Tansu on a plaintext loopback port, advertising only the
    stunnel port in front of it."""
    assert STUNNEL, "stunnel4 is missing: make debian-deps (infra/debian-packages.txt)"
    ca = _write_ca_and_server_cert(tmp_path)
    plain, tls = free_port(), free_port()
    config = tmp_path / "stunnel.conf"
    config.write_text(
        "foreground = yes\npid =\n"
        f"output = {tmp_path / 'stunnel.log'}\n"
        "[kafka]\n"
        f"accept = 127.0.0.1:{tls}\nconnect = 127.0.0.1:{plain}\n"
        f"cert = {tmp_path / 'server.pem'}\nkey = {tmp_path / 'server.key'}\n"
    )
    with EmbeddedBroker(
        f"127.0.0.1:{plain}", advertise=f"127.0.0.1:{tls}", log_dir=tmp_path
    ) as broker:
        assert broker.advertised == f"127.0.0.1:{tls}"
        proc = subprocess.Popen(
            [STUNNEL, str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_listening(tls, proc)
            yield f"127.0.0.1:{tls}", ca
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_listening(port: int, proc: subprocess.Popen) -> None:
    import socket
    import time

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        assert proc.poll() is None, "stunnel exited"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("stunnel is not listening")


async def _stakewatch(env: dict[str, str], *args: str) -> tuple[int, str]:
    """Run a command without blocking the loop (the local receiver runs on it)."""
    limit = 30
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "streams",
        *args,
        env=env,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), limit)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError(f"stakewatch {' '.join(args)} did not end in {limit} s") from None
    return proc.returncode or 0, out.decode(errors="replace")


@pytest.mark.timeout(120)
async def test_every_command_works_through_tls_and_none_without_it(
    tls_broker: tuple[str, Path], tmp_path: Path
) -> None:
    bootstrap, ca = tls_broker
    plain_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("STAKEWATCH_")},
        "PYTHONPATH": str(ROOT),
        "STAKEWATCH_BROKER": f"kafka://{bootstrap}",
        "STAKEWATCH_TOPIC_PREFIX": f"tls{uuid.uuid4().hex[:8]}",
        "STAKEWATCH_DATA_DIR": str(tmp_path / "data"),
        "STAKEWATCH_SNAPSHOT_KEY": "tls-test-snapshot-key-0123456789abcdef",
        "STAKEWATCH_SESSION_TIMEOUT": "2",
        "STAKEWATCH_HEARTBEAT_INTERVAL": "0.5",
        "STAKEWATCH_SNAPSHOT_INTERVAL": "0.5",
        "STAKEWATCH_LOG_FORMAT": "json",
    }
    env = {
        **plain_env,
        "STAKEWATCH_SECURITY_PROTOCOL": "SSL",
        "STAKEWATCH_SSL_CAFILE": str(ca),
    }

    # Without the TLS settings nothing gets through: the only address is the TLS one.
    code, out = await _stakewatch(plain_env, "topics", "create")
    assert code != 0 and "bootstrap" in out, out

    code, out = await _stakewatch(env, "topics", "create")
    assert code == 0, out

    async with FakeApi.webhook() as hook:
        env["STAKEWATCH_WEBHOOK_URL"] = hook.url
        env["STAKEWATCH_WEBHOOK_SECRET"] = WEBHOOK_SECRET
        worker = WorkerProc(env, tmp_path / "worker.log")
        try:
            await wait_for(_ready(worker), 30, "the worker ready through TLS")
            code, out = await _stakewatch(env, "replay", str(SEED))
            assert code == 0, out
            await wait_for(lambda: len(hook.accepted) >= SEED_RECORDS, 30, "every alert delivered")
            await wait_for(_snapshotted(worker), 15, "a snapshot written through TLS")
            assert worker.terminate() == 0, (tmp_path / "worker.log").read_text()[-3000:]

            restarted = WorkerProc(env, tmp_path / "worker.log")
            try:
                status = await wait_for(_ready(restarted), 30, "the restarted worker ready")
                assert status["restored"], "a snapshot read back through TLS"
                assert restarted.terminate() == 0
            finally:
                if restarted.proc.poll() is None:
                    restarted.kill()
        finally:
            if worker.proc.poll() is None:
                worker.kill()
        delivered = hook.accepted

    code, out = await _stakewatch(env, "alerts", "--from-beginning", "--until-idle", "1")
    assert code == 0, out
    records = [orjson.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert len(records) >= SEED_RECORDS
    told = {(r["dedup_key"], r["status"]) for r in records}
    assert len(told) == SEED_RECORDS
    for request in delivered:  # each one a Standard Webhooks request that verifies
        body = Webhook(WEBHOOK_SECRET).verify(request.body, request.headers)
        assert (body["dedup_key"], body["status"]) in told
    assert {(d.json()["dedup_key"], d.json()["status"]) for d in delivered} == told


def _ready(worker: WorkerProc):
    async def ready() -> dict | None:
        status = await worker.status()
        return status if status and status.get("ready") else None

    return ready


def _snapshotted(worker: WorkerProc):
    async def written() -> bool:
        status = await worker.status()
        return bool(status and status.get("snapshots", 0) >= 1)

    return written
