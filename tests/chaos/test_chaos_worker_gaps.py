"""The broker pause the campaign found fatal when it lands on a snapshot write, reproduced
without waiting 30 s: the write fails the way a broker frozen for longer than the
producer's request timeout (30 s) makes it fail. The periodic snapshot is written in the
background: a failed one is logged and the next one tries again; the loop goes on
(docs/reliability.md, "What the campaign found")."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from aiokafka.errors import RequestTimedOutError

from streams.agents.worker import Worker, WorkerOptions
from streams.bench.chaos import Feed, chaos_stream, wait_for
from streams.kafka.broker import EmbeddedBroker
from streams.kafka.topics import TopicNames
from tests.integration.workers import SNAPSHOT_KEY

pytestmark = pytest.mark.integration


async def test_a_snapshot_write_that_times_out_does_not_end_the_worker(tmp_path: Path) -> None:
    with EmbeddedBroker(log_dir=tmp_path) as broker:
        names = TopicNames(f"gap{uuid.uuid4().hex[:8]}")
        worker = Worker(
            WorkerOptions(
                broker.bootstrap,
                names=names,
                session_timeout=2.0,
                heartbeat_interval=0.5,
                snapshot_interval=0.2,
                snapshot_key=SNAPSHOT_KEY,
            )
        )
        write = worker.store.write
        failed: list[bool] = []

        async def times_out_once(*args, **kwargs):
            if not failed:
                failed.append(True)
                raise RequestTimedOutError()
            return await write(*args, **kwargs)

        worker.store.write = times_out_once  # type: ignore[method-assign]
        await worker.start()
        try:
            await Feed(broker.bootstrap, names).publish(chaos_stream(2_000, 1))

            def settled() -> bool:
                assert worker._task is not None
                return worker._task.done() or (
                    worker.ready.is_set() and worker.counts["snapshots"] >= 1
                )

            await wait_for(settled, 30, "a snapshot after the failed one, or the end")
            assert failed, "the snapshot write was never attempted"
            assert worker.failure is None, f"the worker loop ended: {worker.failure!r}"
            assert worker.counts["snapshots"] >= 1
        finally:
            await worker.stop()
