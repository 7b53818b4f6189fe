"""Console receiver for the demo and for tests: a rich panel per record (who, which vendor,
which rival, the ownership path, money and data at risk), or one JSON line per record
(the SPEC record, for piping into ``jq``)."""

from __future__ import annotations

from collections import OrderedDict
from typing import IO, Literal

from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from alerts.format import (
    SPEC_RULES,
    format_money,
    format_paths,
    format_percent,
    resolution_reason,
)
from alerts.receivers.base import Delivery
from alerts.record import AlertRecord
from alerts.retry import OK
from streams.engine import EngineConfig

__all__ = ["ConsoleReceiver"]

_STYLE = {"critical": "bold white on red", "high": "bold red", "warning": "bold yellow"}


class ConsoleReceiver:
    """Writes each record to a terminal (``mode="rich"``) or as JSON lines (``"jsonl"``)."""

    def __init__(
        self,
        *,
        name: str = "console",
        mode: Literal["rich", "jsonl"] = "rich",
        file: IO[str] | None = None,
        console: Console | None = None,
        rules: EngineConfig = SPEC_RULES,
        memory: int = 10_000,
    ) -> None:
        self._name = name
        self._mode = mode
        self._file = file
        self._console = console or Console(file=file, highlight=False, soft_wrap=False)
        self._rules = rules
        self._sensitive = rules.sensitive_data_classes
        self._memory = memory
        self._previous: OrderedDict[str, AlertRecord] = OrderedDict()

    @property
    def name(self) -> str:
        return self._name

    def __repr__(self) -> str:
        return f"ConsoleReceiver(name={self._name!r}, mode={self._mode!r})"

    async def deliver(self, record: AlertRecord) -> Delivery:
        if self._mode == "jsonl":
            line = record.to_json().decode() + "\n"
            if self._file is not None:
                self._file.write(line)
                self._file.flush()
            else:
                self._console.out(line, end="", highlight=False)
        else:
            self._console.print(self.render(record))
        self._previous.pop(record.dedup_key, None)
        self._previous[record.dedup_key] = record
        while len(self._previous) > self._memory:
            self._previous.popitem(last=False)
        return Delivery(self._name, OK, None, "printed")

    def render(self, record: AlertRecord) -> Panel:
        """The panel for ``record`` (uses the previous record of the conflict, if seen)."""
        previous = self._previous.get(record.dedup_key)
        sensitive = [c for c in record.data_classes if c in self._sensitive]
        other = [c for c in record.data_classes if c not in self._sensitive]
        grid = Table.grid(padding=(0, 1))
        grid.add_column(style="bold", no_wrap=True)
        grid.add_column()
        if record.status == "resolved":
            reason = resolution_reason(record, previous, self._rules)
            grid.add_row("Outcome", Text(reason, style="green"))
        stake = format_percent(record.stake)
        basis = "announced only, pending" if record.pending else "closed"
        if record.controlled:
            basis += ", controls it"
        grid.add_row("Who", Text(f"{record.client} (client)"))
        grid.add_row("Vendor", Text(record.vendor))
        grid.add_row("Rival", Text(f"{record.rival} — holds {stake} of {record.vendor} ({basis})"))
        grid.add_row("Ownership", Text("\n".join(format_paths(record)) or "(none)"))
        grid.add_row("Money", Text(f"{format_money(record.spend_365d)} spent, trailing 365 days"))
        data = Text(", ".join(sensitive) or "no sensitive data", style="red" if sensitive else "")
        if other:
            data.append(f" (other: {', '.join(other)})", style="dim")
        grid.add_row("Data at risk", data)
        grid.add_row("Contracts", Text(", ".join(record.active_contracts) or "none active"))
        grid.add_row("Event", Text(f"{record.event_id} at {record.event_time}", style="dim"))
        if record.status == "resolved":
            title = Text(f" RESOLVED · {record.dedup_key} ", style="bold green")
            border = "green"
        else:
            title = Text(f" {record.severity.upper()} · {record.dedup_key} ")
            title.stylize(_STYLE[record.severity])
            border = "red" if record.severity != "warning" else "yellow"
        return Panel(grid, title=title, title_align="left", border_style=border, expand=False)
