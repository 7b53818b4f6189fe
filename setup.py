"""The build: pyproject.toml holds the metadata; this adds the compiled hot path.

Where it can, the install compiles the modules every event passes through (the engine,
the fast decoder, the worker's merge and apply loop) to C extensions with mypyc — about
1.5× the engine's throughput (docs/performance.md, "Compiled hot path"). Each compiled
module is also the plain Python it was compiled from, and runs as such when there is no
compiled build: mypyc missing, no C compiler (every extension is optional: a failed
compile is skipped with a warning), or ``STAKEWATCH_PURE=1`` at install time.
``streams.hot.compiled()`` says which one a process runs.
"""

from __future__ import annotations

import os
import runpy
import sys

from setuptools import setup

#: The hot path: streams/hot.py's list, read without importing the package.
COMPILED = [
    name.replace(".", "/") + ".py" for name in runpy.run_path("streams/hot.py")["HOT_MODULES"]
]


#: mypy's settings for the compile, apart from [tool.mypy] in pyproject.toml: that one checks
#: the whole tree strictly (make typecheck) and fails a partial run over sections it does not
#: use. Libraries absent from the build environment are Any to the compiler.
MYPY_FLAGS = [
    "--config-file=",
    "--python-version=3.11",
    "--ignore-missing-imports",
    "--check-untyped-defs",
]


def ext_modules() -> list:
    if os.environ.get("STAKEWATCH_PURE"):
        print("stakewatch: STAKEWATCH_PURE is set: the pure-Python hot path", file=sys.stderr)
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        print("stakewatch: mypyc is missing: the pure-Python hot path", file=sys.stderr)
        return []
    try:
        extensions = mypycify([*MYPY_FLAGS, *COMPILED], opt_level="3")
    except (Exception, SystemExit) as exc:  # a type error mypyc refuses: build pure
        print(f"stakewatch: not compiled ({exc!r}): the pure-Python hot path", file=sys.stderr)
        return []
    for extension in extensions:
        extension.optional = True  # no C compiler: skipped, and the .py files run
    return extensions


setup(ext_modules=ext_modules())
