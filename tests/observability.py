"""Shared by the unit and integration tests of the observability setup: the repo's rules and
dashboards, the metric names their PromQL selects, and a real Prometheus to scrape with.

Prometheus is Debian's `prometheus` package (infra/debian-packages.txt, installed by
`make test`): the tests fail rather than skip without it, so CI cannot pass untested.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import shutil
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from streams.kafka.broker import free_port

ROOT = Path(__file__).resolve().parents[1]
PROM = ROOT / "infra" / "prometheus"
GRAFANA = ROOT / "infra" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
RULE_FILES = sorted((PROM / "rules").glob("*.yml"))
# Series Prometheus itself attaches to every scrape target.
PROMETHEUS_BUILTINS = frozenset({"up", "scrape_duration_seconds", "scrape_samples_scraped"})


def tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} not found: `make debian-deps` installs it (infra/debian-packages.txt)"
    return path


# -- metric names in PromQL -------------------------------------------------------------------

_KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left"}
_KEYWORDS |= {"group_right", "offset", "bool", "inf", "nan"}


def promql_metric_names(expr: str) -> set[str]:
    """Metric names an expression selects (functions, keywords, labels and strings removed)."""
    s = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)
    s = re.sub(r"\{[^}]*\}", " ", s)  # label matchers
    s = re.sub(r"\[[^\]]*\]", " ", s)  # ranges, subqueries, $__rate_interval
    s = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", s)
    s = re.sub(r"\$\{[^}]*\}|\$\w+", " ", s)  # Grafana variables
    names = set()
    for m in re.finditer(r"(?<![\w:.])([A-Za-z_:][\w:]*)(\s*\()?", s):
        word, call = m.group(1), m.group(2)
        if not call and word.lower() not in _KEYWORDS:
            names.add(word)
    return names


def rules() -> list[dict[str, Any]]:
    return [
        r
        for path in RULE_FILES
        for g in yaml.safe_load(path.read_text())["groups"]
        for r in g["rules"]
    ]


def recorded_names() -> set[str]:
    return {r["record"] for r in rules() if "record" in r}


def panel_exprs() -> Iterator[tuple[str, str, str]]:
    """(dashboard file, panel title, PromQL) for every query of every panel."""

    def walk(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for p in panels:
            yield p
            yield from walk(p.get("panels", []))

    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        for panel in walk(dashboard["panels"]):
            for target in panel.get("targets", []):
                yield path.name, panel["title"], target["expr"]


def grafana_to_promql(expr: str) -> str:
    """A panel query as Prometheus sees it once Grafana has filled in its interval variables."""
    return re.sub(r"\$__(rate_interval|interval|range)\b", "1m", expr)


# -- a real Prometheus ------------------------------------------------------------------------


@dataclass
class Prometheus:
    base: str
    log: Path
    client: httpx.AsyncClient

    async def query(self, promql: str) -> list[dict[str, Any]]:
        """Instant-query result; raises AssertionError on an error answer (bad PromQL)."""
        response = await self.client.get(f"{self.base}/api/v1/query", params={"query": promql})
        body = response.json()
        assert body["status"] == "success", f"{promql}: {body}"
        return body["data"]["result"]

    async def values(self, promql: str, *labels: str) -> dict[tuple[str, ...], float]:
        """{(label values…): value} for an instant vector."""
        return {
            tuple(r["metric"].get(k, "") for k in labels): float(r["value"][1])
            for r in await self.query(promql)
        }

    async def rule_health(self) -> dict[str, str]:
        """{rule name: ok | err | unknown} — `err` with Prometheus' error message."""
        response = await self.client.get(f"{self.base}/api/v1/rules")
        groups = response.json()["data"]["groups"]
        return {
            r["name"]: r["health"] + (f": {r['lastError']}" if r.get("lastError") else "")
            for g in groups
            for r in g["rules"]
        }

    def log_tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:]


@contextlib.asynccontextmanager
async def running_prometheus(
    workdir: Path,
    targets: list[str] | None = None,
    *,
    interval: str = "1s",
    config: dict[str, Any] | None = None,
) -> AsyncIterator[Prometheus]:
    """Debian's `prometheus` on a free port, scraping `targets` as job `stakewatch` every
    `interval` and evaluating the repo's rules as often (or running `config` as given);
    stopped (SIGTERM) on exit."""
    port = free_port()
    if config is None:
        config = {
            "global": {"scrape_interval": interval, "evaluation_interval": interval},
            "rule_files": [str(PROM / "rules" / "*.yml")],
            "scrape_configs": [
                {"job_name": "stakewatch", "static_configs": [{"targets": targets or []}]}
            ],
        }
    path = workdir / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    log = workdir / "prometheus.log"
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            tool("prometheus"),
            f"--config.file={path}",
            f"--storage.tsdb.path={workdir / 'prometheus-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            stdout=out,
            stderr=out,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            for _ in range(100):
                assert proc.returncode is None, log.read_text(errors="replace")[-3000:]
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{base}/-/ready")).status_code == 200:
                        break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("Prometheus not ready after 10 s\n" + log.read_text()[-3000:])
            yield Prometheus(base, log, client)
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()
