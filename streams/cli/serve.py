"""What ``stakewatch worker`` runs: settings, alert receivers, broker (external or embedded),
logging, serve. Bad settings exit 2 before anything connects."""

from __future__ import annotations

import asyncio
import os
import sys

import structlog

from alerts.routing import AlertConfigError, AlertsConfig, load_config
from streams.agents.delivery import DeliveryOptions
from streams.agents.runner import serve
from streams.agents.snapshot_key import SnapshotKey, snapshot_key
from streams.agents.worker import WorkerOptions
from streams.api.auth import Access
from streams.engine import EngineConfig
from streams.logging import configure_logging
from streams.settings import SettingsError, load_settings

__all__ = ["run_worker"]

log = structlog.get_logger("stakewatch.worker")


def run_worker(
    *, broker: str | None, web_port: int | None, config: EngineConfig, embedded: bool = False
) -> int:
    """``embedded``: start a private embedded broker even when a worker or broker runs
    elsewhere (``streams.kafka.running``); otherwise that is refused, naming what runs."""
    from aiokafka.errors import KafkaError

    from streams.kafka.broker import BrokerError

    try:
        settings = load_settings(broker=broker, web_port=web_port)
        access = settings.web_access()
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    try:
        alerts = load_config()
    except AlertConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    configure_logging()
    try:
        key = snapshot_key(settings)  # after logging: a key from a file joins the redactor
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    try:
        return asyncio.run(_main(settings, config, alerts, embedded, key, access))
    except (BrokerError, KafkaError, OSError) as exc:
        print(f"error: {str(exc) or type(exc).__name__}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


async def _wait_for_broker(bootstrap: str) -> None:
    """Until the external broker accepts connections: a worker started before its broker
    (or during an outage) waits, saying so at each try, instead of exiting."""
    from tenacity import AsyncRetrying, retry_if_exception_type, wait_exponential

    from streams.kafka.connect import BrokerUnreachableError, probe_broker

    def say(state) -> None:
        log.warning(
            f"{state.outcome.exception()}; retrying in {state.next_action.sleep:.0f}s",
            broker=bootstrap,
        )

    async for attempt in AsyncRetrying(
        retry=retry_if_exception_type(BrokerUnreachableError),
        wait=wait_exponential(multiplier=1, min=1, max=30),
        before_sleep=say,
        reraise=True,
    ):
        with attempt:
            await probe_broker(bootstrap)


async def _main(
    settings,
    config: EngineConfig,
    alerts: AlertsConfig,
    embedded: bool,
    key: SnapshotKey | None,
    access: Access,
) -> int:
    from streams.kafka.connect import broker_session
    from streams.kafka.running import register, unregister

    members = settings.data_dir.resolve() / "members"
    if settings.bootstrap:
        await _wait_for_broker(settings.bootstrap)
    async with broker_session(settings, private_ok=embedded) as conn:
        listed = register(
            "worker",
            bootstrap=conn.bootstrap,
            data_dir=settings.data_dir.resolve(),
            embedded=conn.embedded,
            pid=os.getpid(),
        )
        try:
            return await _serve(settings, config, alerts, conn, members, key, access)
        finally:
            unregister(listed)


async def _serve(settings, config, alerts, conn, members, key, access) -> int:
    options = WorkerOptions(
        conn.bootstrap,
        names=conn.names,
        config=config,
        group_id=settings.group_id,
        session_timeout=settings.session_timeout,
        heartbeat_interval=settings.heartbeat_interval,
        snapshot_interval=settings.snapshot_interval,
        merge_grace=settings.merge_grace_ms / 1000,
        client=conn.client_options,
        broker_instance=f"embedded:{conn.pid}" if conn.embedded and conn.pid else "",
        member_dir=members,
        snapshot_key=key,
        replication=1 if conn.embedded else settings.replication_factor,
    )
    delivery = None
    if alerts.receivers:  # nobody to tell: no delivery agent, no notification log
        delivery = DeliveryOptions(
            conn.bootstrap,
            alerts,
            names=conn.names,
            group_id=f"{settings.group_id}-delivery",
            session_timeout=settings.session_timeout,
            heartbeat_interval=settings.heartbeat_interval,
            archive=conn.archive,
            client=conn.client_options,
            member_dir=members,
            rules=config,
        )
    return await serve(
        options,
        web_host=settings.web_host,
        web_port=settings.web_port,
        access=access,
        delivery=delivery,
        broker_gone=_shared_broker_gone(settings, conn),
        archive=conn.archive,  # POST /v1/events archives what it publishes (embedded mode)
    )


def _shared_broker_gone(settings, conn):
    """In embedded mode with a broker another process runs: whether it is no longer the
    live one (dead, not listening, or replaced). None otherwise (nothing to watch)."""
    if not conn.embedded or conn.owner:
        return None
    from streams.kafka.connect import live_broker

    data_dir = settings.data_dir.resolve()

    async def gone() -> bool:
        running = await asyncio.to_thread(live_broker, data_dir)
        return running is None or running["pid"] != conn.pid

    return gone
