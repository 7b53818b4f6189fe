"""SIGINT/SIGTERM for the Kafka commands: stop cleanly so an embedded broker never leaks.

A command that started the embedded broker must stop it and remove ``broker.json`` however it
ends; Python's default SIGTERM kills the process without running any ``finally``.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__ = ["Terminated", "on_signals", "terminable"]

_T = TypeVar("_T")


class Terminated(Exception):
    """The command was stopped by SIGTERM (after its cleanup ran)."""


def on_signals(
    loop: asyncio.AbstractEventLoop,
    callback: Callable[[], None],
    signals: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM),
) -> list[signal.Signals]:
    """Call ``callback`` on these signals; returns those installed (none off the main thread)."""
    installed = []
    for sig in signals:
        try:
            loop.add_signal_handler(sig, callback)
        except (RuntimeError, ValueError):
            break
        installed.append(sig)
    return installed


async def terminable(work: Awaitable[_T]) -> _T:
    """Await ``work``; SIGTERM cancels it (so its ``finally`` blocks run) and raises
    ``Terminated``. Code that handles SIGTERM itself may replace the handler meanwhile."""
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(work)
    fired: list[bool] = []

    def cancel() -> None:
        fired.append(True)
        task.cancel()

    installed = on_signals(loop, cancel, (signal.SIGTERM,))
    try:
        return await task
    except asyncio.CancelledError:
        if fired:
            raise Terminated from None
        raise
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
