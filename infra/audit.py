"""`make audit`: pip-audit over exactly what the project installs, at the installed versions.

Auditing the whole environment would fail CI for tools a developer happens to have, and
resolving pyproject.toml afresh would audit versions nobody runs. So this walks the
installed dependency closure of pyproject.toml's dependencies and the ``test`` and
``bench`` extras (read from the file, so stale installed metadata cannot hide a new one;
markers evaluated), pins it, and hands pip-audit that list with ``--no-deps --disable-pip``.

Exit status: 1 when a known vulnerability is found (minus ``IGNORED``, each with its
reason). When the vulnerability service cannot be reached, no package gets audited and
pip-audit reports every one as skipped: that is a loud warning, and an error with
``STAKEWATCH_AUDIT_STRICT=1`` (set it where the network is known to reach PyPI's JSON API).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
EXTRAS = ("test", "bench")  # make installs both: the bench extra carries faust-streaming
# Vulnerabilities accepted knowingly: {"ID": "why it does not affect Stakewatch"}.
IGNORED: dict[str, str] = {}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _applies(req: Requirement, extras: frozenset[str]) -> bool:
    if req.marker is None:
        return True
    return any(req.marker.evaluate({"extra": e}) for e in extras or {""})


def closure(pyproject: Path = PYPROJECT, extras: tuple[str, ...] = EXTRAS) -> dict[str, str]:
    """``{name: installed version}`` of the project's requirements, transitively."""
    project = tomllib.loads(pyproject.read_text())["project"]
    top = list(project["dependencies"])
    for extra in extras:
        top += project["optional-dependencies"][extra]
    todo = [(r.name, frozenset(r.extras)) for r in map(Requirement, top) if _applies(r, EXTRAS)]
    found: dict[str, str] = {}
    seen: set[tuple[str, frozenset[str]]] = set()
    while todo:
        name, wanted = todo.pop()
        if (_norm(name), wanted) in seen:
            continue
        seen.add((_norm(name), wanted))
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            raise SystemExit(f"audit: {name} is required but not installed (make deps)") from None
        found[_norm(dist.metadata["Name"])] = dist.version
        for req in map(Requirement, dist.requires or ()):
            if _applies(req, wanted):
                todo.append((req.name, frozenset(req.extras)))
    return dict(sorted(found.items()))


def main() -> int:
    pins = closure()
    with tempfile.NamedTemporaryFile("w", suffix=".txt", prefix="audit-") as reqs:
        reqs.write("".join(f"{name}=={version}\n" for name, version in pins.items()))
        reqs.flush()
        command = [sys.executable, "-m", "pip_audit", "-r", reqs.name, "--no-deps",
                   "--disable-pip", "--format", "json", "--progress-spinner", "off"]  # fmt: skip
        for vuln_id in IGNORED:
            command += ["--ignore-vuln", vuln_id]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    try:
        report = json.loads(done.stdout)
    except ValueError:
        print(done.stderr.strip() or "audit: pip-audit printed no report", file=sys.stderr)
        return 1
    deps = report.get("dependencies", [])
    vulnerable = [d for d in deps if d.get("vulns")]
    skipped = [d for d in deps if d.get("skip_reason")]
    for dep in vulnerable:
        for vuln in dep["vulns"]:
            fixes = ", ".join(vuln.get("fix_versions") or []) or "no fix yet"
            print(f"VULNERABLE {dep['name']} {dep['version']}: {vuln['id']} (fixed in {fixes})")
    audited = len(deps) - len(skipped)
    print(f"audit: {len(pins)} packages, {audited} audited, {len(skipped)} skipped, "
          f"{sum(len(d['vulns']) for d in vulnerable)} known vulnerabilities"
          f"{f', {len(IGNORED)} ignored' if IGNORED else ''}")  # fmt: skip
    if vulnerable:
        return 1
    if skipped and audited == 0:
        print(
            "audit: WARNING: the vulnerability service answered for no package "
            f"({skipped[0]['skip_reason']}); nothing was audited",
            file=sys.stderr,
        )
        return 1 if os.environ.get("STAKEWATCH_AUDIT_STRICT") == "1" else 0
    for dep in skipped:
        print(f"audit: skipped {dep['name']}: {dep['skip_reason']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
