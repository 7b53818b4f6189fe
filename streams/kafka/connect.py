"""How every command gets a broker: the external one, or the shared embedded one.

With ``STAKEWATCH_BROKER`` set, commands use that broker and nothing is archived. Without it,
they share one embedded Tansu per data directory: ``<data_dir>/broker.json`` names the running
one, and a command that finds none starts it, creates the topics, refills it from the archive
(Tansu keeps nothing on disk) and stops it when the command ends. A lock file makes
concurrent starters agree on one broker; it is held while a broker starts and refills, so
nobody uses a half-filled broker.

Two traps are closed here. A command about to start a *private* broker while a worker or
another embedded broker runs elsewhere for this user (``streams.kafka.running``) refuses, since
its events would go where nothing looks, unless told to (``private_ok``, ``--embedded``).
And an external broker that does not answer is one line naming the address (``probe``),
not a client library's traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import fcntl
import os
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from streams.kafka.archive import Archive, ReadStats
from streams.kafka.broker import BrokerError, EmbeddedBroker
from streams.kafka.clients import client_options
from streams.kafka.publish import Publisher, make_producer
from streams.kafka.running import hidden_from, register, unregister
from streams.kafka.running import pid_alive as _pid_alive
from streams.kafka.topics import TopicNames, TopicSpec, default_topics, ensure_topics
from streams.settings import Settings, SettingsError
from streams.signals import on_signals

__all__ = [
    "BROKER_FILE",
    "BrokerBusyError",
    "BrokerUnreachableError",
    "Connection",
    "DetourError",
    "RefillStats",
    "broker_session",
    "create_topics",
    "live_broker",
    "probe_broker",
    "refill",
    "serve_broker",
]

BROKER_FILE = "broker.json"
LOCK_FILE = "broker.lock"
LOCK_TIMEOUT = 120.0  # a starter holds the lock while it refills a large archive
REFILL_CHUNK = 10_000


class BrokerBusyError(BrokerError):
    """``stakewatch broker`` found an embedded broker already running on this data dir."""


class BrokerUnreachableError(BrokerError):
    """The external broker does not accept connections (the message says what to check)."""


class DetourError(BrokerError):
    """Starting a private embedded broker would hide this command's work (see module doc)."""


@dataclass(slots=True)
class RefillStats:
    records: int = 0
    skipped_lines: int = 0
    seconds: float = 0.0


@dataclass(slots=True)
class Connection:
    """A broker to talk to. ``archive`` is set in embedded mode: publish through it."""

    bootstrap: str
    embedded: bool
    archive: Archive | None
    names: TopicNames
    owner: bool = False  # this process started the broker and stops it at exit
    created_topics: list[str] = field(default_factory=list)
    refill: RefillStats | None = None
    pid: int | None = None  # the embedded broker's process
    # aiokafka security options (streams.kafka.clients); empty for the loopback embedded broker.
    client_options: dict[str, Any] = field(default_factory=dict)

    def publisher(self, producer: Any) -> Publisher:
        """A ``Publisher`` that archives what it sends whenever the mode needs it."""
        return Publisher(producer, self.archive)


@contextlib.asynccontextmanager
async def broker_session(
    settings: Settings,
    *,
    listen: str | None = None,
    partitions: int | None = None,
    exclusive: bool = False,
    private_ok: bool = True,
    probe: bool = False,
    listed: bool = True,
) -> AsyncIterator[Connection]:
    """Yield a ``Connection``; stop the embedded broker at exit if this session started it.

    ``listen`` picks the embedded broker's address (default: a free loopback port),
    ``partitions`` the input topics' partition count when this session creates them, and
    ``exclusive`` (``stakewatch broker``) refuses to share an already running broker.
    ``private_ok=False`` refuses to start a private broker that what runs elsewhere would
    never see (``DetourError``); ``probe`` checks an external broker answers first;
    ``listed=False`` keeps a broker it starts out of ``streams.kafka.running`` (the demo's, on a
    throwaway data dir, is nobody else's business).
    """
    names = TopicNames(settings.topic_prefix)
    if settings.bootstrap:
        options = client_options(settings)  # a bad certificate fails here, named
        if probe:
            await probe_broker(settings.bootstrap)
        yield Connection(
            settings.bootstrap, embedded=False, archive=None, names=names, client_options=options
        )
        return
    data_dir = _data_dir(settings.data_dir)
    archive = Archive(data_dir)
    broker: EmbeddedBroker | None = None
    async with _locked(data_dir):
        running = live_broker(data_dir)
        if running is not None:
            if exclusive:
                raise BrokerBusyError(
                    f"an embedded broker already runs on {running['bootstrap']} "
                    f"(pid {running['pid']}, {data_dir / BROKER_FILE})"
                )
            conn = Connection(running["bootstrap"], True, archive, names, pid=running["pid"])
        else:
            if not private_ok and not exclusive:
                _refuse_detour(data_dir)
            broker = EmbeddedBroker(listen, log_dir=data_dir / "logs")
            await asyncio.to_thread(broker.start)
            try:
                conn = await _prepare(broker, archive, names, partitions)
                _write_broker_file(data_dir, broker)
                entry = (
                    register(
                        "broker",
                        bootstrap=broker.bootstrap,
                        data_dir=data_dir,
                        embedded=True,
                        pid=broker.pid or 0,
                    )
                    if listed
                    else None
                )
            except BaseException:
                await asyncio.to_thread(broker.stop)
                raise
    try:
        yield conn
    finally:
        if broker is not None:
            async with _locked(data_dir):
                unregister(entry)
                _remove_broker_file(data_dir, broker.pid)
                await asyncio.to_thread(broker.stop)


def _refuse_detour(data_dir: Path) -> None:
    """Raise ``DetourError`` when a private broker on ``data_dir`` would go unseen."""
    blank = os.environ.get("STAKEWATCH_BROKER")
    if blank is not None and not blank.strip():
        raise DetourError(
            "STAKEWATCH_BROKER is set but empty, so this command would start a private "
            f"embedded broker on {data_dir}; set it to kafka://HOST:PORT, unset it, or pass "
            "--embedded to use the embedded broker"
        )
    others = hidden_from(data_dir)
    if others:
        seen = "; ".join(r.describe() for r in others)
        hint = next((f"STAKEWATCH_DATA_DIR={r.data_dir}" for r in others if r.embedded), None)
        hint = hint or f"--broker kafka://{others[0].bootstrap}"
        raise DetourError(
            f"no embedded broker runs on data dir {data_dir}, and a private one would be "
            f"seen by nothing that runs: {seen}. Use {hint} to reach it, or --embedded to "
            "start a private broker anyway"
        )


async def probe_broker(bootstrap: str, wait: float = 5.0) -> None:
    """Raise ``BrokerUnreachableError`` unless some bootstrap address accepts a connection.

    One line naming the address and what to check, instead of a client's retries and
    traceback: the usual cause is a typo in the address or a broker that is not running."""
    reasons = []
    for entry in bootstrap.split(","):
        host, _, port = entry.rpartition(":")
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(host.strip("[]"), int(port)), wait
            )
        except TimeoutError:
            reasons.append(f"{entry}: no answer in {wait:g}s")
            continue
        except OSError as exc:
            reasons.append(f"{entry}: {_os_reason(exc)}")
            continue
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return
    raise BrokerUnreachableError(
        f"cannot reach the Kafka broker at {'; '.join(reasons)} — check that it runs and that "
        "--broker or STAKEWATCH_BROKER names it (host:port of a listener this machine reaches)"
    )


def _os_reason(exc: OSError) -> str:
    if isinstance(exc, socket.gaierror):
        return "unknown host"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    return exc.strerror or type(exc).__name__


async def _prepare(
    broker: EmbeddedBroker, archive: Archive, names: TopicNames, partitions: int | None
) -> Connection:
    """Create the remembered and the default topics on a fresh broker, then refill it."""
    remembered = {s.name: s for s in archive.topic_specs()}
    specs = dict(remembered)
    for spec in default_topics(names.prefix, partitions or 8):
        if partitions is not None or spec.name not in remembered:
            specs[spec.name] = spec
    created, _ = await ensure_topics(broker.bootstrap, specs.values())
    archive.remember_topics(specs.values())
    stats = await refill(broker.bootstrap, archive)
    return Connection(
        broker.bootstrap,
        True,
        archive,
        names,
        owner=True,
        created_topics=created,
        refill=stats,
        pid=broker.pid,
    )


async def refill(bootstrap: str, archive: Archive) -> RefillStats:
    """Produce every archived record into a (fresh) broker, in archive order.

    Keys, partitions, timestamps and headers are the original ones, so offsets within each
    partition come out as they were. A topic the archive names but the broker lacks is
    created first (with its default spec when the prefix is recognisable, else 1 partition).
    """
    started = time.perf_counter()
    read = ReadStats()
    producer = make_producer(bootstrap, linger_ms=5)
    await producer.start()
    try:
        cluster = await producer.client.fetch_all_metadata()
        known = set(cluster.topics())
        publisher = Publisher(producer, known_topics=known)
        chunk: list[Any] = []
        for record in archive.read(read):
            if record.topic not in known:
                await ensure_topics(bootstrap, [_spec_for(record.topic)])
                known.add(record.topic)
            chunk.append(record)
            if len(chunk) >= REFILL_CHUNK:
                await publisher.publish(chunk)
                chunk = []
        await publisher.publish(chunk)
        await publisher.flush()
    finally:
        await producer.stop()
    return RefillStats(read.records, read.skipped, time.perf_counter() - started)


def _spec_for(topic: str) -> TopicSpec:
    prefix, _, _ = topic.rpartition(".")
    for spec in default_topics(prefix) if prefix else ():
        if spec.name == topic:
            return spec
    return TopicSpec(topic, 1)


def live_broker(data_dir: Path) -> dict[str, Any] | None:
    """What ``broker.json`` says, if it names a broker that is alive and listening."""
    try:
        doc = orjson.loads((data_dir / BROKER_FILE).read_bytes())
        pid, bootstrap = int(doc["pid"]), str(doc["bootstrap"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    host, _, port = bootstrap.rpartition(":")
    if not _pid_alive(pid) or not port.isdigit() or not _listening(host.strip("[]"), int(port)):
        return None
    return doc


def _listening(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=0.5).close()
    except OSError:
        return False
    return True


def _write_broker_file(data_dir: Path, broker: EmbeddedBroker) -> None:
    doc = {
        "bootstrap": broker.bootstrap,
        "url": broker.url,
        "pid": broker.pid,
        "owner_pid": os.getpid(),
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "log": str(broker.log_path),
    }
    tmp = data_dir / f"{BROKER_FILE}.{os.getpid()}.tmp"
    tmp.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n")
    tmp.replace(data_dir / BROKER_FILE)


def _remove_broker_file(data_dir: Path, pid: int | None) -> None:
    """Remove broker.json only if it still names our broker."""
    path = data_dir / BROKER_FILE
    try:
        if orjson.loads(path.read_bytes()).get("pid") == pid:
            path.unlink()
    except (OSError, ValueError, AttributeError):
        pass


def _data_dir(path: Path) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".probe-{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise SettingsError(
            f"STAKEWATCH_DATA_DIR: {str(path)!r} is not a writable directory ({exc.strerror})"
        ) from None
    return path.resolve()


@contextlib.asynccontextmanager
async def _locked(data_dir: Path) -> AsyncIterator[None]:
    """The data dir's broker lock (``flock``), waited for without blocking the event loop."""
    fd = os.open(data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + LOCK_TIMEOUT
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise BrokerError(
                        f"{data_dir / LOCK_FILE} stayed locked for {LOCK_TIMEOUT:.0f}s"
                    ) from None
                await asyncio.sleep(0.05)
        yield
    finally:
        os.close(fd)


async def serve_broker(
    settings: Settings,
    listen: str | None,
    on_ready: Callable[[Connection], None] | None = None,
) -> None:
    """``stakewatch broker``: run the data dir's embedded broker until SIGINT/SIGTERM.

    It is the same broker a command would start, only long-lived: it writes broker.json so
    other commands use it, and creates topics and refills from the archive first.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = on_signals(loop, stop.set)
    try:
        async with broker_session(
            settings.model_copy(update={"broker": None}), listen=listen, exclusive=True
        ) as conn:
            if on_ready is not None:
                on_ready(conn)
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 1.0)
                if conn.pid is not None and not _pid_alive(conn.pid):
                    raise BrokerError(f"the embedded broker (pid {conn.pid}) exited")
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)


async def create_topics(
    settings: Settings,
    partitions: int | None = None,
    *,
    private_ok: bool = True,
    probe: bool = False,
) -> tuple[list[str], list[str]]:
    """``stakewatch topics create``: ``(created, existing)`` default topic names.

    Without ``partitions``, the embedded mode keeps the counts its data dir recorded.
    A session that had to start the embedded broker created the topics a moment before:
    those count as created, not as existing.
    """
    async with broker_session(
        settings, partitions=partitions, private_ok=private_ok, probe=probe
    ) as conn:
        replication = 1 if conn.embedded else settings.replication_factor  # Tansu: one node
        specs = default_topics(settings.topic_prefix, partitions or 8, replication)
        if conn.archive is not None and partitions is None:
            remembered = {s.name: s for s in conn.archive.topic_specs()}
            specs = [remembered.get(s.name, s) for s in specs]
        created, _ = await ensure_topics(conn.bootstrap, specs, conn.client_options)
        if conn.archive is not None:
            conn.archive.remember_topics(specs)
        fresh = set(created) | set(conn.created_topics)
        names = [s.name for s in specs]
        return [n for n in names if n in fresh], [n for n in names if n not in fresh]
