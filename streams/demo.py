"""`stakewatch demo`: the Scale AI case played through the engine, alerts shown as they fire.

This first cut plays the scenario file through the same engine the worker uses, at a
readable pace, and renders each alert record with the console receiver. The broker-backed
demo (embedded Tansu, worker, replay) replaces the in-process loop with the streaming worker.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from rich.console import Console

from alerts.receivers.console import ConsoleReceiver
from alerts.record import AlertRecord as DeliveredRecord
from streams.engine import Engine

__all__ = ["SEED_SCENARIO", "run_demo"]

SEED_SCENARIO = Path(__file__).resolve().parent / "scenarios" / "scale-ai-2025.ndjson"


def run_demo(path: Path = SEED_SCENARIO, pace: float = 0.6, console: Console | None = None) -> int:
    """Play `path`; pause `pace` seconds before each event that caused alerts. Returns alerts."""
    console = console or Console()
    receiver = ConsoleReceiver(console=console)
    engine = Engine()
    shown = 0
    console.rule("[bold]Stakewatch demo[/bold] — the Scale AI case")
    for raw in path.read_bytes().splitlines():
        if not raw.strip():
            continue
        outcome = engine.process(raw)
        if outcome.rejection is not None:
            console.print(f"[yellow]dead-lettered[/yellow] {outcome.rejection}")
            continue
        if outcome.records and pace:
            time.sleep(pace)
        for record in outcome.records:
            asyncio.run(receiver.deliver(DeliveredRecord.from_json(record.to_json())))
            shown += 1
    console.rule(
        f"{engine.stats['applied']} events applied, {shown} alert records, "
        f"{len(engine.open)} conflicts open"
    )
    return shown
