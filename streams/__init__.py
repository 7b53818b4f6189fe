"""Stakewatch: streaming monitor for conflicts of interest in AI supply chains."""

import os as _os
import sys as _sys

from streams import hot as _hot

__version__ = "0.1.0"

if _os.environ.get("STAKEWATCH_PURE"):
    _hot.use_sources()  # the hot path from its .py files, whatever the install compiled
elif _stale := _hot.stale():
    print(
        f"stakewatch: {', '.join(_stale)}: the source is newer than its compiled build, "
        "which is what runs; reinstall (pip install -e .) or set STAKEWATCH_PURE=1",
        file=_sys.stderr,
    )
