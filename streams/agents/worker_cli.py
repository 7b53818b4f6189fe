"""Glue for ``stakewatch worker``: settings, alert receivers, broker (external or embedded),
logging, serve. Bad settings exit 2 before anything connects."""

from __future__ import annotations

import asyncio
import sys

from alerts.routing import AlertConfigError, AlertsConfig, load_config
from streams.agents.delivery import DeliveryOptions
from streams.agents.runner import serve
from streams.agents.worker import WorkerOptions
from streams.api.auth import Access
from streams.engine import EngineConfig
from streams.logging import configure_logging
from streams.settings import SettingsError, load_settings

__all__ = ["run_worker"]


def run_worker(*, broker: str | None, web_port: int | None, config: EngineConfig) -> int:
    try:
        settings = load_settings(broker=broker, web_port=web_port)
        access = settings.web_access()
    except SettingsError as exc:
        print(f"bad setting: {exc}", file=sys.stderr)
        return 2
    try:
        alerts = load_config()
    except AlertConfigError as exc:
        print(f"bad setting: {exc}", file=sys.stderr)
        return 2
    configure_logging()
    return asyncio.run(_main(settings, config, alerts, access))


async def _main(settings, config: EngineConfig, alerts: AlertsConfig, access: Access) -> int:
    from streams.connect import broker_session

    members = settings.data_dir.resolve() / "members"
    async with broker_session(settings) as conn:
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
            )
        return await serve(
            options,
            web_host=settings.web_host,
            web_port=settings.web_port,
            access=access,
            delivery=delivery,
            broker_gone=_shared_broker_gone(settings, conn),
        )


def _shared_broker_gone(settings, conn):
    """In embedded mode with a broker another process runs: whether it is no longer the
    live one (dead, not listening, or replaced). None otherwise (nothing to watch)."""
    if not conn.embedded or conn.owner:
        return None
    from streams.connect import live_broker

    data_dir = settings.data_dir.resolve()

    async def gone() -> bool:
        running = await asyncio.to_thread(live_broker, data_dir)
        return running is None or running["pid"] != conn.pid

    return gone
