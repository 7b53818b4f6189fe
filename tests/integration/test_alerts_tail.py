"""`stakewatch alerts`: alert records as JSON lines, from the beginning or from the true end."""

from __future__ import annotations

import asyncio
import io
import time
import uuid

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from typer.testing import CliRunner

from streams.cli import app
from streams.kafka.broker import EmbeddedBroker
from streams.kafka.tail import tail_alerts
from streams.kafka.topics import TopicNames, default_topics, ensure_topics

pytestmark = pytest.mark.integration


def _alert(n: int) -> bytes:
    return orjson.dumps({"dedup_key": f"c{n}|v|r", "status": "firing", "severity": "high"})


async def _produce(bootstrap: str, topic: str, values: list[bytes], batch: int = 1) -> None:
    """Produce ``values`` in batches of ``batch`` records."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=50)
    await producer.start()
    try:
        for i in range(0, len(values), batch):
            sent = [await producer.send(topic, v, key=b"k") for v in values[i : i + batch]]
            await asyncio.gather(*sent)
    finally:
        await producer.stop()


@pytest.fixture
def alerts_topic(broker: EmbeddedBroker) -> TopicNames:
    names = TopicNames(f"a{uuid.uuid4().hex[:10]}")
    asyncio.run(ensure_topics(broker.bootstrap, default_topics(names.prefix)))
    return names


def test_until_idle_prints_every_record_from_the_beginning(
    broker: EmbeddedBroker, alerts_topic: TopicNames, monkeypatch: pytest.MonkeyPatch
) -> None:
    values = [_alert(n) for n in range(3)] + [b'{\n"multi": "line"\n}']
    asyncio.run(_produce(broker.bootstrap, alerts_topic.alerts, values))
    monkeypatch.setenv("STAKEWATCH_TOPIC_PREFIX", alerts_topic.prefix)
    started = time.monotonic()
    done = CliRunner().invoke(
        app, ["alerts", "--broker", broker.url, "--from-beginning", "--until-idle", "0.5"]
    )
    assert done.exit_code == 0, done.output
    assert done.stdout.splitlines() == [v.decode() for v in values[:3]] + ['{"multi":"line"}']
    assert time.monotonic() - started < 5


async def test_without_from_beginning_only_new_records_are_printed(
    broker: EmbeddedBroker, alerts_topic: TopicNames
) -> None:
    """Old records sit in batches of 4, so Tansu's ListOffsets LATEST (last batch start + 1)
    points 3 records before the end: a plain seek_to_end would print those."""
    old = [_alert(n) for n in range(8)]
    await _produce(broker.bootstrap, alerts_topic.alerts, old, batch=4)
    out = io.BytesIO()
    ready = asyncio.Event()
    tail = asyncio.create_task(
        tail_alerts(broker.bootstrap, alerts_topic.alerts, out, idle=1.0, on_ready=ready.set)
    )
    await asyncio.wait_for(ready.wait(), 10)
    new = [_alert(n) for n in range(10, 13)]
    await _produce(broker.bootstrap, alerts_topic.alerts, new)
    assert await asyncio.wait_for(tail, 10) == 3
    assert out.getvalue().splitlines() == new


class _Sink(io.BytesIO):
    def __init__(self) -> None:
        super().__init__()
        self.written = asyncio.Event()

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.written.set()
        return super().write(data)


async def test_follow_runs_until_cancelled(
    broker: EmbeddedBroker, alerts_topic: TopicNames
) -> None:
    out = _Sink()
    ready = asyncio.Event()
    tail = asyncio.create_task(
        tail_alerts(broker.bootstrap, alerts_topic.alerts, out, idle=None, on_ready=ready.set)
    )
    await asyncio.wait_for(ready.wait(), 10)
    await _produce(broker.bootstrap, alerts_topic.alerts, [_alert(1)])
    await asyncio.wait_for(out.written.wait(), 5)
    assert out.getvalue() == _alert(1) + b"\n"
    out.written.clear()  # still following: a later record is written too
    await _produce(broker.bootstrap, alerts_topic.alerts, [_alert(2)])
    await asyncio.wait_for(out.written.wait(), 5)
    assert out.getvalue() == _alert(1) + b"\n" + _alert(2) + b"\n"
    assert not tail.done()
    tail.cancel()
    with pytest.raises(asyncio.CancelledError):
        await tail
