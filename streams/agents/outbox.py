"""Publish: the worker's outputs to the producer, without waiting per record.

Alert records and dead letters are handed to aiokafka (which batches them) as each batch
is applied; acknowledgements are checked between batches, and a checkpoint waits for all
of them. A failed send is reported once (``failure``): the worker then rewinds to its last
checkpoint, so a record is published again, never lost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any

from aiokafka import AIOKafkaProducer

from streams.kafka.clients import make_producer

__all__ = ["Outbox", "Output"]

Output = tuple[str, bytes, bytes | None, list[tuple[str, bytes]]]
"""(topic, value, key, headers) of one record to publish."""


class Outbox:
    """The worker's producer and the sends not yet acknowledged."""

    def __init__(self, bootstrap: str, client: Mapping[str, Any] | None = None) -> None:
        self.bootstrap = bootstrap
        self.client = dict(client or {})
        self.producer: AIOKafkaProducer | None = None
        self._futures: list[asyncio.Future[Any]] = []

    async def start(self) -> None:
        self.producer = make_producer(
            self.bootstrap,
            self.client,
            linger_ms=5,
            max_request_size=4 * 1024 * 1024,
            request_timeout_ms=30_000,
        )
        await self.producer.start()

    async def stop(self) -> None:
        if self.producer is not None:
            await self.producer.stop()

    async def send(self, outputs: Iterable[Output]) -> None:
        """Hand records to the producer; their acknowledgements are checked later."""
        producer = self.producer
        assert producer is not None
        for topic, value, key, headers in outputs:
            self._futures.append(await producer.send(topic, value, key=key, headers=headers))

    def failure(self) -> BaseException | None:
        """Forget acknowledged sends; the first failed one since the last call, if any."""
        pending = []
        failed = None
        for f in self._futures:
            if not f.done():
                pending.append(f)
            elif f.exception() is not None and failed is None:
                failed = f.exception()
        self._futures = pending
        return failed

    async def flush(self) -> None:
        """Until every record handed over so far is acknowledged or has failed."""
        producer = self.producer
        assert producer is not None
        await producer.flush()
        if self._futures:
            await asyncio.gather(*self._futures, return_exceptions=True)
