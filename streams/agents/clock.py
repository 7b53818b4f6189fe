"""The clocks a worker reads, passed in so that a test can pass a fake one.

Two readings, never mixed: ``monotonic`` for intervals (snapshot cadence, the merge's grace,
log throttling) and ``wall`` for the one rule that needs the date (``future``, read once per
batch) and for the lag of a record behind its timestamp.
"""

from __future__ import annotations

import time
from typing import Protocol

__all__ = ["SYSTEM_CLOCK", "Clock", "SystemClock"]


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (intervals only)."""
        ...

    def wall(self) -> float:
        """Seconds since the epoch, UTC."""
        ...


class SystemClock:
    """The process's clocks: ``time.monotonic`` and ``time.time``."""

    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()


SYSTEM_CLOCK = SystemClock()
