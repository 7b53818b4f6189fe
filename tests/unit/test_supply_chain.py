"""The container runs as a non-root user, and `make audit` fails on a known vulnerability.

Docker cannot run here, so the Dockerfile is read as data; pip-audit's network answer is
replaced by canned reports, so these tests say what infra/audit.py does with each.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuations joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", "\n".join(
        line for line in text.splitlines() if not line.lstrip().startswith("#")
    ))  # fmt: skip
    out = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _final_stage(steps: list[tuple[str, str]]) -> list[tuple[str, str]]:
    starts = [i for i, (word, _) in enumerate(steps) if word == "FROM"]
    return steps[starts[-1] :]


def _uid_of(name: str, stage: list[tuple[str, str]]) -> int | None:
    """The uid a RUN useradd/adduser in the stage gave ``name`` (None if not created there)."""
    for word, args in stage:
        if word != "RUN":
            continue
        for command in re.split(r"&&|;", args):
            tokens = command.split()
            if tokens and tokens[0] in ("useradd", "adduser") and tokens[-1] == name:
                for flag in ("--uid", "-u"):
                    if flag in tokens:
                        return int(tokens[tokens.index(flag) + 1])
    return None


def root_problem(dockerfile: str) -> str | None:
    """Why the image's final stage would run as root, or None."""
    stage = _final_stage(_instructions(dockerfile))
    users = [(i, args) for i, (word, args) in enumerate(stage) if word == "USER"]
    if not users:
        return "the final stage never leaves root"
    at, spec = users[-1]
    user, _, group = spec.partition(":")
    if any(part in ("root", "0") for part in (user, group)):
        return f"USER {spec}"
    if not user.isdigit():
        uid = _uid_of(user, stage)
        if uid is None:
            return f"user {user!r} is not created with a uid in the final stage"
        if uid == 0:
            return f"user {user!r} has uid 0"
    entry = [i for i, (word, _) in enumerate(stage) if word in ("ENTRYPOINT", "CMD")]
    if not entry or min(entry) < at:
        return "the entrypoint is declared before USER"
    return None


def test_the_image_runs_as_a_non_root_user() -> None:
    assert root_problem((ROOT / "Dockerfile").read_text()) is None


@pytest.mark.parametrize(
    "dockerfile",
    [
        'FROM python:3.11-slim\nCMD ["x"]\n',
        'FROM python:3.11-slim\nUSER 0\nCMD ["x"]\n',
        'FROM python:3.11-slim\nRUN useradd --uid 10001 app\nUSER app:root\nCMD ["x"]\n',
        'FROM python:3.11-slim\nRUN useradd --uid 0 -o app\nUSER app\nCMD ["x"]\n',
        'FROM python:3.11-slim\nUSER nobody-made-here\nCMD ["x"]\n',
        'FROM b AS build\nRUN useradd -u 5 app\nUSER app\nFROM python:3.11-slim\nCMD ["x"]\n',
    ],
    ids=["no-user", "uid-0", "root-group", "useradd-uid-0", "unknown-user", "user-in-build-stage"],
)
def test_the_check_catches_a_root_image(dockerfile: str) -> None:
    assert root_problem(dockerfile) is not None


# -- make audit ----------------------------------------------------------------------------------


def _audit() -> ModuleType:
    spec = importlib.util.spec_from_file_location("audit", ROOT / "infra" / "audit.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_audit_covers_the_projects_dependencies() -> None:
    pins = _audit().closure()
    for name in ("aiokafka", "faust-streaming", "pydantic", "pydantic-core", "httpx", "pytest"):
        assert name in pins, name
    assert "stakewatch" not in pins


def _with_report(monkeypatch: pytest.MonkeyPatch, audit: ModuleType, deps: list[dict]) -> None:
    def run(command, **kw):
        assert "--no-deps" in command and "--disable-pip" in command
        report = {"dependencies": deps, "fixes": []}
        return subprocess.CompletedProcess(command, 0, json.dumps(report), "")

    monkeypatch.setattr(audit.subprocess, "run", run)


def test_a_known_vulnerability_fails_the_audit(monkeypatch, capsys) -> None:
    audit = _audit()
    vuln = {"id": "PYSEC-0000-1", "fix_versions": ["9.9"], "aliases": [], "description": ""}
    _with_report(monkeypatch, audit, [{"name": "aiokafka", "version": "0.14.0", "vulns": [vuln]}])
    assert audit.main() == 1
    assert "VULNERABLE aiokafka 0.14.0: PYSEC-0000-1 (fixed in 9.9)" in capsys.readouterr().out


def test_a_clean_report_passes(monkeypatch) -> None:
    audit = _audit()
    _with_report(monkeypatch, audit, [{"name": "aiokafka", "version": "0.14.0", "vulns": []}])
    assert audit.main() == 0


def test_an_unreachable_service_warns_and_fails_only_when_strict(monkeypatch, capsys) -> None:
    audit = _audit()
    skipped = [{"name": "aiokafka", "skip_reason": "Dependency not found on PyPI"}]
    _with_report(monkeypatch, audit, skipped)
    monkeypatch.delenv("STAKEWATCH_AUDIT_STRICT", raising=False)
    assert audit.main() == 0
    assert "nothing was audited" in capsys.readouterr().err
    monkeypatch.setenv("STAKEWATCH_AUDIT_STRICT", "1")
    assert audit.main() == 1
