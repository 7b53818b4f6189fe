"""Every ```bash block of README.md and docs/*.md runs, from a clone, and exits 0.

The docs drifted once (a README example read a folder a clone does not have): so they are
run as a newcomer would run them. The repository's files are copied to a fresh directory
with nothing beside it, the per-user state dir is fresh (so is the default data dir), and
the blocks run top to bottom — README.md first, then docs/*.md alphabetically — each as
`bash -euo pipefail`, in one session: the README walkthrough's broker and worker stay up
for the later docs' `curl` examples, like a reader's open terminal.

Info-string words (README.md, "Tests", says the same):
- `bash background`: runs in the foreground until stopped (`stakewatch broker`). Started,
  waited for until it prints its first line, stopped at the end.
- `bash no-run`: not run; its first line must be `# no-run: <the reason>`.
`&` jobs of any block are stopped at the end too. A ```sh block fails the test: commands
are ```bash (so they are checked), environment snippets ```dotenv.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
FENCE = re.compile(
    r"^(?P<indent> *)```(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=indent)```\s*$", re.M | re.S
)
BLOCK_TIMEOUT = 240.0


@dataclass(frozen=True)
class Block:
    doc: str
    line: int
    words: tuple[str, ...]
    body: str

    @property
    def where(self) -> str:
        return f"{self.doc}:{self.line}"


def blocks(path: Path) -> list[Block]:
    text = path.read_text()
    found = []
    for match in FENCE.finditer(text):
        words = tuple(match["info"].split())
        if not words:
            continue
        indent = len(match["indent"])
        body = "\n".join(line[indent:] for line in match["body"].splitlines())
        line = text.count("\n", 0, match.start()) + 1
        found.append(Block(str(path.relative_to(ROOT)), line, words, body + "\n"))
    return found


def documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_the_docs_mark_commands_as_bash_and_give_every_no_run_a_reason() -> None:
    for doc in documents():
        for block in blocks(doc):
            assert block.words[0] not in ("sh", "shell", "console"), (
                f"{block.where}: commands go in ```bash blocks (they are run), settings in "
                "```dotenv"
            )
            if block.words[0] == "bash":
                assert set(block.words[1:]) <= {"no-run", "background"}, block.where
            if "no-run" in block.words:
                assert block.body.startswith("# no-run: "), f"{block.where}: say why"


def _clone(into: Path) -> Path:
    """The repository's files (tracked, plus new ones not ignored), nothing else."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, listed):
        source = ROOT / name.decode()
        if source.is_file():
            target = into / name.decode()
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return into


def test_every_command_block_of_the_docs_runs_from_a_clone(tmp_path: Path) -> None:
    clone = _clone(tmp_path / "clone")
    env = {k: v for k, v in os.environ.items() if not k.startswith("STAKEWATCH_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["COLUMNS"] = "120"
    groups: list[int] = []  # process groups to stop at the end: background blocks, & jobs
    ran = 0
    try:
        for doc in documents():
            for block in blocks(doc):
                if block.words[0] != "bash" or "no-run" in block.words:
                    continue
                log = tmp_path / f"block-{ran:03d}.log"
                if "background" in block.words:
                    _start_background(block, clone, env, log, groups)
                else:
                    output = _run(block, clone, env, log, groups)
                    _check_documented_result(block, output)
                ran += 1
    finally:
        _stop(groups)
    assert ran >= 15  # the blocks this test was written against, give or take


def _run(block: Block, cwd: Path, env: dict[str, str], log: Path, groups: list[int]) -> str:
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            ["bash", "-euo", "pipefail", "-c", block.body],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its & jobs share the group: stopped at the end
        )
    groups.append(proc.pid)
    try:
        code = proc.wait(BLOCK_TIMEOUT)
    except subprocess.TimeoutExpired:
        code = None
    output = log.read_text(errors="replace")
    assert code == 0, f"{block.where}: exit {code}\n--- block\n{block.body}--- output\n{output}"
    return output


def _start_background(
    block: Block, cwd: Path, env: dict[str, str], log: Path, groups: list[int]
) -> None:
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            ["bash", "-euo", "pipefail", "-c", block.body],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    groups.append(proc.pid)
    deadline = time.monotonic() + 60
    while b"\n" not in log.read_bytes():
        assert proc.poll() is None, f"{block.where}: exited {proc.returncode}\n{log.read_text()}"
        assert time.monotonic() < deadline, f"{block.where}: printed nothing in 60 s"
        time.sleep(0.1)


def _check_documented_result(block: Block, output: str) -> None:
    """Beyond exit 0, where the docs promise a result the reader will look for."""
    three_ways = "STAKEWATCH_TOPIC_PREFIX=three-ways" in block.body
    if "stakewatch alerts --from-beginning" in block.body and not three_ways:  # walkthrough
        assert '"dedup_key":"openai|scale-ai|meta"' in output, output
        assert '"dedup_key":"google|scale-ai|meta","status":"resolved"' in output, output
    if three_ways:  # README, "Three ways in"
        assert '"dedup_key":"openai|scale-ai|meta","severity":"high","stake":11' in output, output
    if "curl -s 'localhost:6066/v1/conflicts?client=openai'" in block.body:
        assert '"dedup_key": "openai|scale-ai|meta"' in output, output


def _stop(groups: list[int]) -> None:
    for group in groups:
        try:
            os.killpg(group, signal.SIGTERM)
        except ProcessLookupError:
            continue
    deadline = time.monotonic() + 20
    for group in groups:
        while time.monotonic() < deadline:
            try:
                os.killpg(group, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
