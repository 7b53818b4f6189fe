"""Commands that run a worker: ``worker`` (until SIGTERM) and ``demo`` (embedded broker,
worker and the seed scenario in one process)."""

from __future__ import annotations

from typing import Annotated

import typer

from streams.cli.common import ConfigOpt, EmbeddedOpt, config_of

__all__ = ["demo", "worker"]


def worker(
    broker: Annotated[
        str | None, typer.Option("--broker", help="kafka://HOST:PORT (else STAKEWATCH_BROKER).")
    ] = None,
    web_port: Annotated[
        int | None, typer.Option("--web-port", help="Port for /metrics, /healthz, /v1.")
    ] = None,
    config: ConfigOpt = None,
    embedded: EmbeddedOpt = False,
) -> None:
    """Run the stream worker: input topics → engine → alerts; stops cleanly on SIGTERM.

    An external broker that does not answer is waited for (retrying with a growing pause,
    each try logged); a worker started before its broker simply starts late.
    """
    from streams.cli.serve import run_worker

    code = run_worker(broker=broker, web_port=web_port, config=config_of(config), embedded=embedded)
    raise typer.Exit(code)


def demo(
    pace: Annotated[
        float, typer.Option(help="Seconds to pause before each stake and termination.")
    ] = 0.6,
    once: Annotated[
        bool, typer.Option("--once", help="Exit after the scenario instead of watching.")
    ] = False,
) -> None:
    """Embedded broker + worker; replay the Scale AI case and show alerts as they fire."""
    import asyncio
    import os

    from streams.demo import run_demo
    from streams.logging import configure_logging

    # The panels are the demo's output; worker logs only when something is wrong.
    configure_logging(os.environ.get("STAKEWATCH_LOG_LEVEL", "WARNING"))
    asyncio.run(run_demo(pace=pace, follow=not once))
