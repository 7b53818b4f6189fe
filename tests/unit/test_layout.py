"""The layout's promises (docs/architecture.md, "Where does X live"), checked on the source:
who may import whom, and what the worker's process never loads."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _imports(path: Path) -> set[str]:
    """Every module a file imports (absolute names; `from a import b` counts `a` and `a.b`)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _sources(*packages: str) -> dict[str, set[str]]:
    return {_module(p): _imports(p) for pkg in packages for p in sorted((ROOT / pkg).rglob("*.py"))}


def test_alerts_depend_on_the_engines_public_surface_only() -> None:
    """`alerts` imports from `streams` only names `streams.engine` exports (no submodule, no
    agents, no Kafka): delivery composes alerts, never the other way round."""
    from streams import engine

    public = {"streams.engine"} | {f"streams.engine.{name}" for name in engine.__all__}
    for module, imports in _sources("alerts").items():
        reached = {i for i in imports if i == "streams" or i.startswith("streams.")}
        assert reached <= public, (module, sorted(reached - public))


def test_the_runtime_never_imports_the_bench_package() -> None:
    """Benchmarks and fault campaigns live in streams.bench; only its own modules and the
    `bench`/`chaos` commands import it."""
    allowed = {"streams.cli.bench"}
    for module, imports in _sources("streams", "alerts").items():
        if module.startswith("streams.bench") or module in allowed:
            continue
        assert not any(i.startswith("streams.bench") for i in imports), module


def test_the_worker_is_imported_for_running_it_only() -> None:
    """Constants and helpers live where they belong, so importing the worker means running
    or serving one: the runner, the web surface, the worker command, the demo, the bench."""
    users = {
        m
        for m, imports in _sources("streams", "alerts").items()
        if "streams.agents.worker" in imports and m != "streams.agents.worker"
    }
    assert users <= {
        "streams.agents.runner",
        "streams.web",
        "streams.demo",
        "streams.cli.serve",
        "streams.bench.peers",
        "streams.bench.chaos",
    }, sorted(users)


def test_a_worker_process_loads_neither_the_bench_nor_its_peers() -> None:
    """`stakewatch worker` imports the runner; faust, Quix Streams and streams.bench stay out."""
    code = (
        "import sys, streams.cli.serve, streams.agents.runner; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('faust', 'quixstreams') "
        "or m.startswith('streams.bench')]; print(bad)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert done.stdout.strip() == "[]", done.stdout
