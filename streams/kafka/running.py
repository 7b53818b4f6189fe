"""What Stakewatch runs for this user: embedded brokers and workers, and where they live.

A command that finds no embedded broker on its data dir starts a private one for its
lifetime. That is right when nothing else runs (the archive carries the events to the next
broker on that data dir), and a silent detour when a worker runs elsewhere — on another
data dir, or against an external broker: the events land where it never looks. So every
embedded broker a command starts and every worker leave a small file in a per-user
directory while they run (``<user state dir>/running/``), and a command about to start a
private broker reads it first (``hidden_from``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

import orjson
import platformdirs

__all__ = [
    "Running",
    "hidden_from",
    "pid_alive",
    "register",
    "registry_dir",
    "running",
    "unregister",
    "user_state_dir",
]

APP = "stakewatch"


def user_state_dir() -> Path:
    """This user's Stakewatch state directory (``~/.local/state/stakewatch`` on Linux): the
    default data dir, so every shell of one user finds the same broker and archive."""
    return Path(platformdirs.user_state_dir(APP))


def registry_dir() -> Path:
    """Where running brokers and workers are listed: per user, whatever the data dir."""
    return user_state_dir() / "running"


@dataclass(frozen=True, slots=True)
class Running:
    """One registered process: an embedded ``broker`` or a ``worker``."""

    role: str
    pid: int
    bootstrap: str
    data_dir: str
    embedded: bool

    def describe(self) -> str:
        where = f"data dir {self.data_dir}" if self.embedded else "an external broker"
        return f"{self.role} (pid {self.pid}) on kafka://{self.bootstrap}, {where}"


def register(role: str, *, bootstrap: str, data_dir: Path, embedded: bool, pid: int) -> Path:
    """List a running process; returns the file to ``unregister`` when it ends."""
    folder = registry_dir()
    folder.mkdir(parents=True, exist_ok=True)
    doc = {
        "role": role,
        "pid": pid,
        "bootstrap": bootstrap,
        "data_dir": str(data_dir),
        "embedded": embedded,
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    path = folder / f"{role}-{pid}.json"
    tmp = folder / f".{role}-{pid}.{os.getpid()}.tmp"
    tmp.write_bytes(orjson.dumps(doc))
    tmp.replace(path)
    return path


def unregister(path: Path | None) -> None:
    if path is not None:
        with contextlib.suppress(OSError):
            path.unlink()


def running() -> list[Running]:
    """Every registered process still alive; the files of dead ones are removed."""
    found = []
    try:
        paths = sorted(registry_dir().glob("*.json"))
    except OSError:
        return []
    for path in paths:
        try:
            doc = orjson.loads(path.read_bytes())
            entry = Running(
                str(doc["role"]),
                int(doc["pid"]),
                str(doc["bootstrap"]),
                str(doc["data_dir"]),
                bool(doc["embedded"]),
            )
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if pid_alive(entry.pid):
            found.append(entry)
        else:
            unregister(path)
    return found


def hidden_from(data_dir: Path) -> list[Running]:
    """What a private embedded broker on ``data_dir`` would be hidden from: embedded
    brokers and workers on other data dirs, and workers on an external broker."""
    mine = str(data_dir)
    return [r for r in running() if r.pid != os.getpid() and (not r.embedded or r.data_dir != mine)]


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs. A zombie does not: a killed broker nobody reaped (a container
    whose PID 1 does not reap) would otherwise look alive for as long as the container runs,
    and a successor listening on its port would pass for it."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return True  # no /proc (not Linux): trust kill(0)
    return stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3] not in (b"Z", b"X")
