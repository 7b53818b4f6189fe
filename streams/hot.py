"""The hot path's modules, compiled by mypyc where the install could (setup.py).

Every record passes through these; each is plain Python that mypyc also compiles to a C
extension beside it, which Python then imports instead of the ``.py`` file. This module
tells which build a process runs (``compiled``), finds a compiled build older than its
source (``stale``: an editable install edited since), and can make a process run the
sources (``use_sources``; ``STAKEWATCH_PURE=1``). It imports nothing from the project:
setup.py reads ``HOT_MODULES`` from it before anything is installed.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
import sysconfig
from pathlib import Path
from types import ModuleType

__all__ = ["HOT_MODULES", "build", "compiled", "stale", "use_sources"]

#: In the order a record meets them.
HOT_MODULES = (
    "streams.agents.merge",
    "streams.agents.apply",
    "streams.events.fast",
    "streams.engine.ledger",
    "streams.engine.engine",
    "streams.engine.ownership",
    "streams.engine.relationships",
    "streams.engine.provenance",
    "streams.engine.records",
    "streams.engine.rules",
)

_ROOT = Path(__file__).resolve().parent.parent  # the directory that holds `streams`


def _source(name: str) -> Path:
    return _ROOT / (name.replace(".", "/") + ".py")


def _extension(name: str) -> Path:
    return _ROOT / (name.replace(".", "/") + str(sysconfig.get_config_var("EXT_SUFFIX")))


def compiled() -> bool:
    """Whether this process runs the compiled engine (imports it to ask)."""
    from streams.engine import engine

    return not str(engine.__file__).endswith(".py")


def build() -> str:
    """``compiled`` or ``source``: which build runs, as snapshots and the bench record it."""
    return "compiled" if compiled() else "source"


def stale() -> list[str]:
    """Hot modules whose compiled build is older than their source: the build Python would
    import does not do what the source says (reinstall, or run with STAKEWATCH_PURE=1)."""
    out = []
    for name in HOT_MODULES:
        extension, source = _extension(name), _source(name)
        if extension.exists() and source.stat().st_mtime > extension.stat().st_mtime:
            out.append(name)
    return out


class _Sources(importlib.abc.MetaPathFinder):
    """Finds the hot modules' ``.py`` files, ahead of the compiled ones."""

    def find_spec(
        self, fullname: str, path: object = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in HOT_MODULES:
            return None
        return importlib.util.spec_from_file_location(fullname, _source(fullname))


def use_sources() -> None:
    """Import the hot modules from their sources from now on (before they are imported)."""
    if not any(isinstance(f, _Sources) for f in sys.meta_path):
        sys.meta_path.insert(0, _Sources())
