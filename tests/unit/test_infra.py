"""Prometheus config, rules and their unit tests; Grafana dashboards; the compose stack.

promtool and prometheus come from Debian's `prometheus` package, which `make test` installs
(infra/debian-packages.txt): these tests fail rather than skip without them. Docker cannot run
here, so docker-compose.yml and the Dockerfile are checked as data, and the compose file
through Debian's `docker-compose config` (which needs no daemon).
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from prometheus_client import CollectorRegistry

from streams.metrics import Metrics
from tests.observability import (
    DASHBOARDS,
    GRAFANA,
    PROM,
    PROMETHEUS_BUILTINS,
    ROOT,
    RULE_FILES,
    panel_exprs,
    promql_metric_names,
    recorded_names,
    rules,
    running_prometheus,
    tool,
)


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, f"{args}\n{done.stdout}\n{done.stderr}"
    return done


# -- promtool ---------------------------------------------------------------------------------


@pytest.mark.parametrize("config", ["prometheus.yml", "prometheus.local.yml"])
def test_promtool_accepts_the_scrape_configs(config: str) -> None:
    out = run(tool("promtool"), "check", "config", PROM / config).stdout
    assert f"{len(RULE_FILES)} rule files found" in out


def test_promtool_accepts_the_rules() -> None:
    assert len(RULE_FILES) >= 2
    run(tool("promtool"), "check", "rules", *RULE_FILES)


def test_promtool_unit_tests_of_the_alerting_rules_pass() -> None:
    tests = sorted((PROM / "tests").glob("*.yml"))
    assert tests
    run(tool("promtool"), "test", "rules", *tests)


def test_every_health_alert_has_a_promtool_test() -> None:
    alerts = {r["alert"] for r in rules() if "alert" in r}
    assert {
        "StakewatchWorkerDown",
        "StakewatchNoEvents",
        "StakewatchDeadLetterRateHigh",
        "StakewatchDeliveryFailures",
        "StakewatchConsumerLagGrowing",
    } <= alerts
    tested = set()
    for path in (PROM / "tests").glob("*.yml"):
        for case in yaml.safe_load(path.read_text())["tests"]:
            tested |= {t["alertname"] for t in case.get("alert_rule_test", [])}
    assert alerts - tested == set()


# -- metric names in PromQL -------------------------------------------------------------------


def test_the_promql_name_parser_finds_metrics_and_only_metrics() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (le, topic) (rate(a_bucket{x="y", z=~"b(c)"}[5m])))'
        " / on(job) group_left(instance) b:c:rate5m offset 5m > 1e-9"
        " and sum without (topic) (increase(c_total[$__rate_interval])) or label_replace(d,"
        ' "n", "$1", "m", "(.*)")'
    )
    assert promql_metric_names(expr) == {"a_bucket", "b:c:rate5m", "c_total", "d"}


def exported_names() -> set[str]:
    """What a worker exports: `Metrics.sample_names()` of a fresh registry is exactly the set
    a running worker's /metrics exposes (tests/integration/test_prometheus_scrape.py checks
    that against a real worker), plus recording rules and Prometheus' own series."""
    return set(Metrics(CollectorRegistry()).sample_names()) | recorded_names() | PROMETHEUS_BUILTINS


def test_every_rule_queries_only_metrics_the_worker_exports() -> None:
    exported = exported_names()
    for rule in rules():
        names = promql_metric_names(rule["expr"])
        assert names, f"no metric found in {rule['expr']!r}"
        assert names <= exported, f"{rule.get('alert') or rule.get('record')}: {names - exported}"


def test_every_dashboard_panel_queries_only_metrics_the_worker_exports() -> None:
    exported = exported_names()
    checked = 0
    for dashboard, title, expr in panel_exprs():
        names = promql_metric_names(expr)
        assert names, f"{dashboard} / {title}: no metric found in {expr!r}"
        assert names <= exported, f"{dashboard} / {title}: {names - exported}"
        checked += 1
    assert checked >= 20


# -- Grafana ----------------------------------------------------------------------------------


def test_dashboards_are_provisioned_and_use_the_provisioned_datasource() -> None:
    assert {p.name for p in DASHBOARDS} == {"exposure.json", "operations.json"}
    (source,) = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )["datasources"]
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    (provider,) = yaml.safe_load(
        (GRAFANA / "provisioning" / "dashboards" / "stakewatch.yml").read_text()
    )["providers"]
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"
    uids = set()
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        uids.add(dashboard["uid"])
        ids = [p["id"] for p in dashboard["panels"]]
        assert len(ids) == len(set(ids)), f"{path.name}: duplicate panel ids"
        for panel in dashboard["panels"]:
            if panel["type"] == "row":
                continue
            assert panel["targets"], f"{path.name} / {panel['title']}: no query"
            for ds in [panel["datasource"], *(t["datasource"] for t in panel["targets"])]:
                assert ds == {"type": "prometheus", "uid": "${datasource}"}
        # a datasource variable, so the JSON imports into any Grafana; the provisioned
        # (default) Prometheus is what it picks here
        (variable,) = dashboard["templating"]["list"]
        assert (variable["name"], variable["type"], variable["query"]) == (
            "datasource",
            "datasource",
            "prometheus",
        )
        assert "${datasource}" not in json.dumps(dashboard["templating"])
        assert '"uid": "prometheus"' not in path.read_text()
    assert source["isDefault"] and source["uid"] == "prometheus"
    assert len(uids) == len(DASHBOARDS)


def test_the_dashboards_have_the_panels_operators_need() -> None:
    titles = {
        path.name: {p["title"] for p in json.loads(path.read_text())["panels"]}
        for path in DASHBOARDS
    }
    assert {
        "Open conflicts by severity",
        "Spend at risk by rival",
        "Spend at risk by client",
        "Top conflicts",
        "Stake changes over time (top conflicts)",
    } <= titles["exposure.json"]
    assert {
        "Throughput by topic and outcome",
        "Processing latency (record timestamp → applied)",
        "Consumer lag by topic",
        "Dead letters by reason",
        "Deliveries by receiver and outcome",
        "Delivery queue depth",
    } <= titles["operations.json"]


# -- docker compose and the image (validated as data: Docker cannot run here) ------------------


BROKER = "kafka://kafka:9092"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def option(command: list[str], name: str) -> str:
    assert name in command, f"{name} missing from {command}"
    return command[command.index(name) + 1]


def test_compose_has_the_production_shaped_services(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {
        "kafka",
        "topics",
        "worker",
        "seed",
        "prometheus",
        "alertmanager",
        "grafana",
    }
    # All of them start with a plain `docker compose up` (issue 5: the seed fills the dashboards).
    assert not [name for name, s in services.items() if s.get("profiles")]


def test_compose_runs_kafka_in_kraft_mode_with_one_node(compose: dict[str, Any]) -> None:
    kafka = compose["services"]["kafka"]
    assert re.fullmatch(r"apache/kafka:3\.9\.\d+", kafka["image"])
    env = kafka["environment"]
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@kafka:9093"
    assert "PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == 1
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"  # the topics service creates them
    assert "healthcheck" in kafka


def test_compose_creates_topics_before_the_worker_starts(compose: dict[str, Any]) -> None:
    services = compose["services"]
    topics, worker = services["topics"], services["worker"]
    assert topics["command"][:2] == ["topics", "create"]
    assert topics["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert worker["depends_on"]["topics"]["condition"] == "service_completed_successfully"
    assert worker["depends_on"]["kafka"]["condition"] == "service_healthy"
    for name in ("topics", "worker", "seed"):
        assert option(services[name]["command"], "--broker") == BROKER, name
        assert services[name]["environment"]["STAKEWATCH_BROKER"] == BROKER, name
        assert services[name]["build"] == "."


def test_compose_worker_serves_metrics_where_prometheus_scrapes(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker"]
    command = worker["command"]
    port = option(command, "--web-port")
    assert command[0] == "worker"
    # The web port binds to loopback unless told otherwise: Prometheus is another container.
    assert worker["environment"]["STAKEWATCH_WEB_HOST"] == "0.0.0.0"
    assert f"127.0.0.1:{port}:{port}" in worker["ports"]  # /metrics: this host only
    assert f"127.0.0.1:{port}/healthz" in " ".join(worker["healthcheck"]["test"])
    assert "disable" not in worker["healthcheck"]
    config = yaml.safe_load((PROM / "prometheus.yml").read_text())
    (job,) = config["scrape_configs"]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    assert job["static_configs"][0]["targets"] == [f"worker:{port}"]
    local = yaml.safe_load((PROM / "prometheus.local.yml").read_text())
    assert local["scrape_configs"][0]["static_configs"][0]["targets"] == [f"localhost:{port}"]


def test_compose_seeds_the_scenario_shipped_in_the_image(compose: dict[str, Any]) -> None:
    seed = compose["services"]["seed"]
    assert seed["command"][0] == "replay"
    path = seed["command"][1]
    # The Dockerfile copies streams/scenarios/ to /app/streams/scenarios/: same relative path.
    copies = re.findall(r"^COPY\s+(\S+)\s+(\S+)\s*$", (ROOT / "Dockerfile").read_text(), re.M)
    assert ("streams/scenarios", "/app/streams/scenarios") in copies
    assert path.startswith("/app/streams/scenarios/")
    assert (ROOT / path.removeprefix("/app/")).is_file()
    assert "streams/scenarios" not in (ROOT / ".dockerignore").read_text()
    assert seed["depends_on"]["worker"]["condition"] == "service_healthy"
    assert seed["restart"] == "no"


def test_compose_mounts_the_repos_prometheus_and_grafana_config(compose: dict[str, Any]) -> None:
    services = compose["services"]
    prometheus, grafana = services["prometheus"], services["grafana"]
    assert "./infra/prometheus:/etc/prometheus:ro" in prometheus["volumes"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    assert "127.0.0.1:9090:9090" in prometheus["ports"]
    assert "./infra/grafana/provisioning:/etc/grafana/provisioning:ro" in grafana["volumes"]
    assert "./infra/grafana/dashboards:/var/lib/grafana/dashboards:ro" in grafana["volumes"]
    assert "3000:3000" in grafana["ports"]
    # no anonymous access, and the admin password must come from the environment
    assert grafana["environment"]["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert "GF_AUTH_ANONYMOUS_ORG_ROLE" not in grafana["environment"]
    assert grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD"].startswith(
        "${GRAFANA_ADMIN_PASSWORD:?"
    )
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home.startswith("/var/lib/grafana/dashboards/")
    assert (GRAFANA / "dashboards" / home.rsplit("/", 1)[1]).is_file()
    assert grafana["depends_on"]["prometheus"]["condition"] == "service_healthy"
    for name in ("kafka", "worker", "prometheus", "alertmanager", "grafana"):
        assert "healthcheck" in services[name], name
    for name in ("topics", "seed"):  # one-shot: the image's HEALTHCHECK would never pass
        assert services[name]["healthcheck"] == {"disable": True}, name


def test_compose_mounts_only_files_that_exist_and_declares_its_volumes(
    compose: dict[str, Any],
) -> None:
    named = set(compose.get("volumes") or {})
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            assert not source.startswith(("/", "~")), f"{name}: host path {source} outside the repo"
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name}: {source} missing"
            else:
                assert source in named, f"{name}: volume {source} not declared"


# -- docker-compose config: the real parser, with an env file as an operator writes it ---------


def compose_config(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env_file = tmp_path / "compose.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    return subprocess.run(
        [
            tool("docker-compose"),
            "--env-file",
            str(env_file),
            "--project-directory",
            str(ROOT),
            "-f",
            str(ROOT / "docker-compose.yml"),
            "config",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin"},  # nothing from this shell leaks into the check
    )


REQUIRED = {"STAKEWATCH_API_TOKEN": "t0ken", "GRAFANA_ADMIN_PASSWORD": "pw"}


def test_docker_compose_accepts_the_file_and_passes_the_receivers_through(tmp_path: Path) -> None:
    from alerts.routing import ENV

    receivers = {var: f"https://{var.lower()}.test/x" for var in ENV.values()}
    done = compose_config(tmp_path, {**REQUIRED, **receivers, "STAKEWATCH_REPLICATION_FACTOR": "3"})
    assert done.returncode == 0, done.stderr
    services = yaml.safe_load(done.stdout)["services"]
    worker = services["worker"]["environment"]
    for var, value in receivers.items():  # every receiver variable docs/alerts.md names
        assert worker[var] == value, var
    assert worker["STAKEWATCH_API_TOKEN"] == "t0ken"
    assert worker["STAKEWATCH_WEB_HOST"] == "0.0.0.0"
    for name in ("topics", "worker", "seed"):
        assert services[name]["environment"]["STAKEWATCH_REPLICATION_FACTOR"] == "3", name
    alertmanager = services["alertmanager"]["environment"]
    for var in ("STAKEWATCH_SLACK_WEBHOOK_URL", "STAKEWATCH_PAGERDUTY_ROUTING_KEY"):
        assert alertmanager[var] == receivers[var]
    assert services["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD"] == "pw"
    for name in ("kafka", "worker", "prometheus", "alertmanager"):
        for port in services[name]["ports"]:
            published = port if isinstance(port, str) else port["host_ip"]
            assert published.startswith("127.0.0.1"), (name, port)


@pytest.mark.parametrize("missing", sorted(REQUIRED))
def test_docker_compose_refuses_to_start_without_a_token_or_a_grafana_password(
    tmp_path: Path, missing: str
) -> None:
    done = compose_config(tmp_path, {k: v for k, v in REQUIRED.items() if k != missing})
    assert done.returncode != 0
    assert f"set {missing}" in done.stderr


def test_prometheus_sends_its_alerts_to_the_stacks_alertmanager(compose: dict[str, Any]) -> None:
    config = yaml.safe_load((PROM / "prometheus.yml").read_text())
    (am,) = config["alerting"]["alertmanagers"]
    assert am["static_configs"][0]["targets"] == ["alertmanager:9093"]
    local = yaml.safe_load((PROM / "prometheus.local.yml").read_text())
    assert local["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == [
        "localhost:9093"
    ]
    alertmanager = compose["services"]["alertmanager"]
    assert "./infra/alertmanager:/etc/alertmanager:ro" in alertmanager["volumes"]
    assert "sh /etc/alertmanager/config.sh > /tmp/alertmanager.yml" in alertmanager["entrypoint"][2]
    assert "127.0.0.1:9093:9093" in alertmanager["ports"]
    run(tool("promtool"), "check", "config", PROM / "prometheus.yml")


@pytest.mark.parametrize(
    ("env", "receivers"),
    [
        ({}, {"ops": set()}),
        ({"STAKEWATCH_SLACK_WEBHOOK_URL": "https://hooks.slack.test/x"}, {"ops": {"slack"}}),
        (
            {
                "STAKEWATCH_SLACK_WEBHOOK_URL": "https://hooks.slack.test/x",
                "STAKEWATCH_PAGERDUTY_ROUTING_KEY": "k3y",
            },
            {"ops": {"slack"}, "ops-page": {"pagerduty"}},
        ),
    ],
)
def test_the_alertmanager_config_has_a_receiver_for_each_configured_secret(
    tmp_path: Path, env: dict[str, str], receivers: dict[str, set[str]]
) -> None:
    done = subprocess.run(
        ["sh", str(ROOT / "infra" / "alertmanager" / "config.sh")],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin", **env},
    )
    config = yaml.safe_load(done.stdout)
    got = {
        r["name"]: {k.removesuffix("_configs") for k in r if k.endswith("_configs")}
        for r in config["receivers"]
    }
    assert got == receivers
    if "ops-page" in receivers:  # pages only for critical alerts, and Slack still hears them
        page, rest = config["route"]["routes"]
        assert page["matchers"] == ['severity="critical"'] and page["continue"] is True
        assert rest == {"receiver": "ops"}
    path = tmp_path / "alertmanager.yml"
    path.write_text(done.stdout)
    run(tool("amtool"), "check-config", path)


def test_the_alertmanager_config_refuses_a_value_that_would_break_the_yaml() -> None:
    done = subprocess.run(
        ["sh", str(ROOT / "infra" / "alertmanager" / "config.sh")],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", "STAKEWATCH_SLACK_WEBHOOK_URL": "https://x/'y"},
    )
    assert done.returncode == 2 and "STAKEWATCH_SLACK_WEBHOOK_URL" in done.stderr
    assert "https://x" not in done.stderr


def test_topics_take_the_configured_replication_factor() -> None:
    from streams.kafka.topics import default_topics

    assert {s.replication for s in default_topics("p")} == {1}
    assert {s.replication for s in default_topics("p", 8, 3)} == {3}


def test_the_image_runs_the_worker_as_a_non_root_user() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim\b", dockerfile, re.MULTILINE)
    (user,) = re.findall(r"^USER\s+(\S+)", dockerfile, re.MULTILINE)
    assert user.split(":")[0] not in {"root", "0"}
    (cmd,) = re.findall(r"^CMD\s+(\[.*\])", dockerfile, re.MULTILINE)
    (entrypoint,) = re.findall(r"^ENTRYPOINT\s+(\[.*\])", dockerfile, re.MULTILINE)
    assert json.loads(entrypoint) + json.loads(cmd) == [
        "stakewatch",
        "worker",
        "--web-port",
        "6066",
    ]
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", "tests", ".stakewatch"} <= set(ignored)


def test_prometheus_is_installed_by_the_test_entry_point() -> None:
    packages = (ROOT / "infra" / "debian-packages.txt").read_text().split()
    assert {"prometheus", "prometheus-alertmanager", "docker-compose"} <= set(packages)


# -- a real scrape ----------------------------------------------------------------------------


async def test_a_real_prometheus_scrapes_the_endpoint_and_evaluates_the_rules(
    tmp_path: Path,
) -> None:
    """The rules against a bare `Metrics` endpoint (no broker): quick, and pins the recording
    rules' arithmetic; tests/integration/test_prometheus_scrape.py does it with a worker."""
    metrics = Metrics(CollectorRegistry())
    metrics.observe_applied("stakewatch.ownership", "ownership.stake", 0.03)
    metrics.set_conflicts(
        [
            {
                "client": "google",
                "vendor": "scale-ai",
                "rival": "meta",
                "severity": "critical",
                "stake": 49.0,
                "pending": True,
                "spend_365d": 150e6,
            }
        ]
    )
    app = web.Application()
    app.router.add_get("/metrics", metrics.aiohttp_handler())
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    worker_port = runner.addresses[0][1]
    wanted = {
        'up{job="stakewatch"}': 1,
        'stakewatch_open_conflicts{severity="critical"}': 1,
        'stakewatch:open_conflicts:sum{severity="critical"}': 1,
        'stakewatch:rival_spend_at_risk_usd:sum{rival="meta"}': 150e6,
        'stakewatch_events_consumed_total{outcome="applied"}': 1,
    }
    seen: dict[str, float] = {}
    try:
        async with running_prometheus(tmp_path, [f"127.0.0.1:{worker_port}"]) as prom:
            for _ in range(120):
                for promql in wanted:
                    result = await prom.query(promql)
                    if result:
                        seen[promql] = float(result[0]["value"][1])
                if seen.keys() == wanted.keys():
                    break
                await asyncio.sleep(0.5)
            assert seen == wanted, prom.log_tail()
    finally:
        await runner.cleanup()
