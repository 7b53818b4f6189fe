"""The notification log on a Kafka topic: what each receiver was told survives restarts.

One partition, key ``receiver|dedup_key``, value the JSON of a ``Notified`` (a null value
deletes the key). Created ``cleanup.policy=compact`` so real Kafka keeps only the last value
per key; Tansu accepts that and never compacts (``docs/notes-faust-tansu.md``), so the log is read
whole at start and kept in a dict: ``get`` never touches the broker, ``put`` waits for the
broker's ack before it returns (the dispatcher acks a record only after its outcome is
stored).

Reading "to the end" uses the high watermark of a fetch response from a fresh consumer
(``streams.kafka.partitions``): ListOffsets LATEST is short on Tansu, and a loader that
trusted it would miss the newest values, the ones a restart needs most.

In embedded mode (``archive`` given) every value is appended to the local archive before it
is produced, like the input topics: Tansu keeps nothing on disk, and a broker restart that
lost the log would page again for everything a rebuild re-emits.

Each value carries a per-key sequence number (header ``seq``: the previous value's plus one)
and a reader keeps the highest, not the last by offset. Offsets order the values only while
one writer writes them: a refill from the archive racing a writer that has not yet noticed
the broker restart can land an older value after a newer one, and "last wins" would then
forget a delivery and page again. Records without the header (older logs) count as 0.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import orjson
import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from alerts.notification_log import Handled, Notified
from streams.engine import SEVERITIES, STATUSES
from streams.kafka.clients import make_consumer, make_producer
from streams.kafka.partitions import batches_to_end

if TYPE_CHECKING:
    from streams.kafka.archive import Archive

__all__ = ["KafkaNotificationLog", "decode_value", "encode_value"]

log = structlog.get_logger("stakewatch.alerts")

_STATUSES = STATUSES
_SEVERITIES = SEVERITIES


SEQ_HEADER = "seq"


def _seq_of(headers: Iterable[tuple[str, bytes]] | None) -> int:
    for name, value in headers or ():
        if name == SEQ_HEADER:
            try:
                return int(value)
            except ValueError:
                return 0
    return 0


def encode_value(value: Notified) -> bytes:
    """The record value for ``value`` (compact JSON, a version field for later changes)."""
    return orjson.dumps(
        {
            "v": 1,
            "status": value.status,
            "severity": value.severity,
            "event_id": value.event_id,
            "handled": [[h.event_id, h.status, h.severity, h.outcome] for h in value.handled],
        }
    )


def decode_value(raw: bytes) -> Notified:
    """Inverse of ``encode_value``; raises ``ValueError`` on anything else."""
    doc = orjson.loads(raw)
    if not isinstance(doc, dict) or doc.get("v") != 1:
        raise ValueError("not a version-1 notification value")
    status, severity = doc["status"], doc["severity"]
    if status not in (None, *_STATUSES) or severity not in (None, *_SEVERITIES):
        raise ValueError(f"bad state {status!r}/{severity!r}")
    handled = []
    for event_id, h_status, h_severity, outcome in doc["handled"]:
        if h_status not in _STATUSES or h_severity not in _SEVERITIES:
            raise ValueError(f"bad handled state {h_status!r}/{h_severity!r}")
        handled.append(Handled(str(event_id), h_status, h_severity, str(outcome)))
    event_id = doc["event_id"]
    return Notified(status, severity, None if event_id is None else str(event_id), tuple(handled))


class KafkaNotificationLog:
    """``NotificationLog`` on one single-partition topic (see the module docstring).

    ``start()`` loads the topic; ``catch_up()`` reads what others wrote since (call it when
    taking over delivery, while nothing here is writing); ``stop()`` closes the producer.
    """

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        *,
        archive: Archive | None = None,
        read_timeout: float = 30.0,
        client: Mapping[str, Any] | None = None,
    ) -> None:
        """``client``: extra aiokafka options for every client made here (SASL/SSL)."""
        self.bootstrap = bootstrap
        self._client = dict(client or {})
        self.topic = topic
        self._tp = TopicPartition(topic, 0)
        self._archive = archive
        self._read_timeout = read_timeout
        self._raw: dict[tuple[str, str], bytes] = {}  # as read; decoded on first get
        self._data: dict[tuple[str, str], Notified] = {}
        self._next = 0  # first offset not yet read
        self._seq: dict[tuple[str, str], int] = {}  # highest sequence number seen per key
        self._producer: AIOKafkaProducer | None = None
        self.records_read = 0
        self.skipped = 0
        self.overtaken = 0  # older values read after newer ones, ignored

    async def start(self) -> None:
        self._producer = make_producer(
            self.bootstrap, self._client, linger_ms=0, request_timeout_ms=30_000
        )
        await self._producer.start()
        try:
            started = time.monotonic()
            read = await self.catch_up()
        except BaseException:
            await self._producer.stop()
            self._producer = None
            raise
        log.info(
            "notification log loaded",
            topic=self.topic,
            records=read,
            keys=len(self),
            seconds=round(time.monotonic() - started, 3),
        )

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def __aenter__(self) -> KafkaNotificationLog:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # -- the NotificationLog protocol -----------------------------------------------------

    async def get(self, receiver: str, dedup_key: str) -> Notified | None:
        key = (receiver, dedup_key)
        value = self._data.get(key)
        if value is None and key in self._raw:
            raw = self._raw.pop(key)
            try:
                value = self._data[key] = decode_value(raw)
            except (ValueError, KeyError, TypeError) as exc:
                self._skip(key, exc)
        return value

    async def put(self, receiver: str, dedup_key: str, value: Notified) -> None:
        """Archive (embedded mode), produce and wait for the ack, then remember."""
        producer = self._producer
        if producer is None:
            raise RuntimeError("notification log not started")
        key = f"{receiver}|{dedup_key}".encode()
        raw = encode_value(value)
        seq = self._seq.get((receiver, dedup_key), 0) + 1
        headers = [(SEQ_HEADER, str(seq).encode())]
        if self._archive is not None:
            from streams.kafka.archive import ArchivedRecord

            record = ArchivedRecord(
                self.topic, key, raw, int(time.time() * 1000), tuple(headers), partition=0
            )
            await asyncio.to_thread(self._archive.append, [record])
        await producer.send_and_wait(self.topic, raw, key=key, partition=0, headers=headers)
        self._seq[(receiver, dedup_key)] = seq
        self._raw.pop((receiver, dedup_key), None)
        self._data[(receiver, dedup_key)] = value

    # -- reading ---------------------------------------------------------------------------

    async def catch_up(self) -> int:
        """Apply every record from where the last read stopped to the true end; returns how
        many were read. Must not run while ``put`` calls are in flight (it could apply an
        older value after a newer put)."""
        consumer = make_consumer(
            self.bootstrap,
            self._client,
            enable_auto_commit=False,
            fetch_max_wait_ms=50,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=8 * 1024 * 1024,
        )
        await consumer.start()
        try:
            consumer.assign([self._tp])
            return await self._read(consumer)
        finally:
            await consumer.stop()

    async def _read(self, consumer: AIOKafkaConsumer) -> int:
        tp = self._tp
        read = 0
        try:
            async for records in batches_to_end(consumer, tp, self._next, self._read_timeout):
                self._apply(records)
                read += len(records)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc} ({self.topic} at offset {self._next})") from None
        self._next = max(self._next, await consumer.position(tp))
        self.records_read += read
        return read

    def _apply(self, records: Iterable[Any]) -> None:
        """Keep the raw last value per key: only the ones asked for are ever decoded (a
        third of a full load's time on 50k records)."""
        raw, data, seqs = self._raw, self._data, self._seq
        for r in records:
            self._next = r.offset + 1
            receiver, sep, dedup_key = (r.key or b"").decode(errors="replace").partition("|")
            if not sep or not receiver or not dedup_key:
                self._skip(r.key, ValueError("key is not receiver|dedup_key"), r.offset)
                continue
            key = (receiver, dedup_key)
            seq = _seq_of(r.headers)
            if seq < seqs.get(key, 0):
                self.overtaken += 1  # an older value that landed late (see the docstring)
                continue
            seqs[key] = seq
            data.pop(key, None)
            if r.value is None:
                raw.pop(key, None)
            else:
                raw[key] = r.value

    def _skip(self, key: object, exc: Exception, offset: int | None = None) -> None:
        self.skipped += 1
        log.warning(
            "notification log record skipped",
            topic=self.topic,
            key=repr(key)[:200],
            offset=offset,
            error=f"{type(exc).__name__}: {exc}"[:200],
        )

    # -- inspection ------------------------------------------------------------------------

    def items(self) -> list[tuple[tuple[str, str], Notified]]:
        """Everything loaded or written (decoded now), for tests and debugging."""
        for key in list(self._raw):
            try:
                self._data[key] = decode_value(self._raw.pop(key))
            except (ValueError, KeyError, TypeError) as exc:
                self._skip(key, exc)
        return sorted(self._data.items())

    def __len__(self) -> int:
        return len(self._data) + len(self._raw)
