"""`stakewatch replay` and `topics create` against the session's real broker."""

from __future__ import annotations

import uuid
from collections import defaultdict
from pathlib import Path

import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from typer.testing import CliRunner

from streams.cli import app
from streams.events import Rejection, decode
from streams.kafka.broker import EmbeddedBroker
from streams.kafka.connect import broker_session
from streams.kafka.replay import event_time_ms, replay
from streams.kafka.topics import TopicNames, default_topics, ensure_topics, route
from streams.settings import load_settings
from tests.integration.kafka_read import read_topic

pytestmark = pytest.mark.integration

SEED = Path(__file__).resolve().parents[1] / "fixtures" / "scale-ai-2025.ndjson"
BAD = [
    b"{not json",
    b'{"type":"merger.rumoured"}',
    b"\xff\xfe\x00",
    b"[]",
    b'{"specversion":"1.0","id":"x1","source":"/s","type":"ownership.stake",'
    b'"time":"2025-01-01T00:00:00Z","data":{"owner":"a","asset":"a","percent":5}}',
]


@pytest.fixture
def prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def cli_env(broker: EmbeddedBroker, prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STAKEWATCH_BROKER", broker.url)
    monkeypatch.setenv("STAKEWATCH_TOPIC_PREFIX", prefix)


async def test_replay_puts_every_event_on_its_topic_with_its_key_and_event_time(
    broker: EmbeddedBroker, prefix: str
) -> None:
    names = TopicNames(prefix)
    await ensure_topics(broker.bootstrap, default_topics(prefix))
    expected: dict[str, dict[bytes, list[tuple[bytes, int]]]] = defaultdict(dict)
    for raw in SEED.read_bytes().splitlines():
        event = decode(raw)
        assert not isinstance(event, Rejection)
        topic, key = route(names, event)
        expected[topic].setdefault(key, []).append((raw, event_time_ms(event.time)))

    settings = load_settings(broker=broker.url, topic_prefix=prefix)
    async with broker_session(settings) as conn:
        assert (conn.embedded, conn.archive) == (False, None)
        with SEED.open("rb") as source:
            summary = await replay(conn, source)
    assert summary.as_dict()["published"] == 80 and not summary.dead_lettered

    for topic in names.inputs:
        got: dict[bytes, list[tuple[bytes, int]]] = {}
        partitions: dict[bytes, set[int]] = defaultdict(set)
        for r in await read_topic(broker.bootstrap, topic):  # per partition, offset order
            got.setdefault(r.key, []).append((r.value, r.timestamp))
            partitions[r.key].add(r.partition)
            assert dict(r.headers) == {"content-type": b"application/cloudevents+json"}
        assert got == expected[topic], topic  # same keys, file order per key, event time
        assert all(len(p) == 1 for p in partitions.values())
    assert await read_topic(broker.bootstrap, names.dead_letter) == []


def test_replay_mode_binary_publishes_what_the_sdk_reads_and_a_worker_applies(
    broker: EmbeddedBroker, prefix: str, cli_env: None
) -> None:
    """`--mode binary`: attributes as ce_ headers, data as the value (SPEC v2 §1); the
    CloudEvents SDK reads each record as the line's event, and a worker fires the seed's
    alerts from them."""
    import asyncio

    from cloudevents.v1.kafka import KafkaMessage, from_binary

    from tests.integration.workers import (
        alert_docs,
        backtest_open,
        open_from_alerts,
        running_worker,
        wait_for,
    )

    runner = CliRunner()
    assert runner.invoke(app, ["topics", "create"]).exit_code == 0
    done = runner.invoke(app, ["replay", str(SEED), "--mode", "binary", "--json"])
    assert done.exit_code == 0, done.output
    names = TopicNames(prefix)
    lines = SEED.read_bytes().splitlines()
    by_id = {orjson.loads(line)["id"]: orjson.loads(line) for line in lines}
    seen = 0
    for topic in names.inputs:
        for r in asyncio.run(read_topic(broker.bootstrap, topic)):
            event = from_binary(KafkaMessage(dict(r.headers), r.key, r.value))
            line = by_id[event["id"]]
            assert (event["type"], event["source"], event.data) == (
                line["type"],
                line["source"],
                line["data"],
            )
            seen += 1
    assert seen == len(lines)

    async def run_worker() -> dict[str, str]:
        async with running_worker(broker.bootstrap, names) as worker:
            await wait_for(lambda: worker.counts["applied"] == len(lines), 30, "all applied")
            expected, records = backtest_open(lines)
            await wait_for(
                lambda: _count(alert_docs(broker.bootstrap, names), len(records)), 30, "alerts"
            )
        return open_from_alerts(await alert_docs(broker.bootstrap, names)) == expected

    assert asyncio.run(run_worker())
    bad = runner.invoke(app, ["replay", str(SEED), "--mode", "both"])
    assert bad.exit_code == 2 and "--mode" in bad.stderr


async def _count(docs, n: int) -> bool:
    return len(await docs) >= n


def test_bad_lines_go_to_the_dead_letter_topic_with_reasons_and_original_bytes(
    broker: EmbeddedBroker, prefix: str, cli_env: None, tmp_path: Path
) -> None:
    seed = SEED.read_bytes().splitlines()
    path = tmp_path / "mixed.ndjson"
    path.write_bytes(b"\n".join(seed[:10] + BAD + seed[10:]) + b"\n")
    runner = CliRunner()
    assert runner.invoke(app, ["topics", "create"]).exit_code == 0
    done = runner.invoke(app, ["replay", str(path), "--json"])
    assert done.exit_code == 0, done.output
    summary = orjson.loads(done.stdout)
    assert summary["published"] == 80
    assert summary["dead_lettered_by_reason"] == {
        "invalid_json": 3,
        "same_party": 1,
        "unknown_type": 1,
    }

    import asyncio

    letters = asyncio.run(read_topic(broker.bootstrap, TopicNames(prefix).dead_letter))
    assert [r.value for r in letters] == BAD
    for number, record in enumerate(letters, start=11):
        headers = dict(record.headers)
        assert headers["source_line"] == str(number).encode()
        assert headers["source_file"] == str(path).encode()
        code = decode(record.value)
        assert isinstance(code, Rejection)
        assert headers["code"] == code.code.encode()
        assert headers["reason"] == str(code).encode()


def test_replay_refuses_missing_topics_instead_of_auto_creating_them(
    broker: EmbeddedBroker, prefix: str, cli_env: None
) -> None:
    done = CliRunner().invoke(app, ["replay", str(SEED)])
    assert done.exit_code == 1
    assert f"topic '{prefix}.reference' does not exist; run `stakewatch topics create`" in (
        done.stderr
    )

    async def topics() -> list[str]:
        admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
        await admin.start()
        try:
            return await admin.list_topics()
        finally:
            await admin.close()

    import asyncio

    assert not [t for t in asyncio.run(topics()) if t.startswith(prefix)]


def test_topics_create_reports_created_then_existing(
    broker: EmbeddedBroker, prefix: str, cli_env: None
) -> None:
    runner = CliRunner()
    first = runner.invoke(app, ["topics", "create", "--partitions", "3"])
    assert first.exit_code == 0, first.output
    assert f"created {prefix}.ownership" in first.stdout
    assert "9 created, 0 already existed" in first.stdout
    second = runner.invoke(app, ["topics", "create", "--partitions", "3"])
    assert second.exit_code == 0, second.output
    assert f"exists  {prefix}.ownership" in second.stdout
    assert "0 created, 9 already existed" in second.stdout
    other = runner.invoke(app, ["topics", "create", "--partitions", "4"])
    assert other.exit_code == 1
    assert "has 3 partitions, declared 4" in other.stderr
