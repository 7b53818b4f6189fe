"""infra/k8s: every manifest validates against the Kubernetes schemas (offline, strict:
unknown fields are errors), and the set says what docs/deploy.md says — workers as a
StatefulSet with a data volume per pod, probes on /readyz and /healthz, scrape
annotations, every secret from a Secret, Kafka external, settings the worker accepts."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from alerts.routing import ENV, AlertSettings, parse_routing
from streams.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "infra" / "k8s"
KUBERNETES = "1.30.0"  # the oldest minor still supported upstream when this was written
SECRET_SUFFIXES = ("_TOKEN", "_PASSWORD", "_SECRET", "_KEY", "_URL")


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


MANIFESTS = sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
KUSTOMIZATION = yaml.safe_load((K8S / "kustomization.yaml").read_text())


def resources() -> dict[tuple[str, str], dict[str, Any]]:
    out = {}
    for name in KUSTOMIZATION["resources"]:
        for doc in documents(K8S / name):
            out[(doc["kind"], doc["metadata"]["name"])] = doc
    return out


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_every_manifest_validates_against_the_kubernetes_schemas(path: Path) -> None:
    docs = documents(path)
    assert docs
    for doc in docs:
        kubernetes_validate.validate(doc, KUBERNETES, strict=True)


def test_a_broken_manifest_is_caught() -> None:
    """The validator is not vacuous: a typo and a wrong type both fail."""
    (statefulset,) = documents(K8S / "statefulset.yaml")
    typo = {**statefulset, "spec": {**statefulset["spec"], "replica": 2}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(typo, KUBERNETES, strict=True)
    wrong = {**statefulset, "spec": {**statefulset["spec"], "replicas": "two"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(wrong, KUBERNETES, strict=True)


def test_kustomization_lists_every_manifest_but_the_secret_examples() -> None:
    listed = set(KUSTOMIZATION["resources"])
    assert listed == {p.name for p in MANIFESTS} - {"secrets.example.yaml"}
    kinds = {kind for kind, _ in resources()}
    assert "Secret" not in kinds  # created out of band: no secret in the repo is applied
    # Kafka is external: no broker runs here
    assert not any("kafka" in name.lower() for _, name in resources())
    (image,) = KUSTOMIZATION["images"]
    for doc in resources().values():
        spec = doc.get("spec", {}).get("template", {}).get("spec", {})
        for container in spec.get("containers", []):
            assert container["image"] == image["name"]


def test_workers_are_a_statefulset_with_a_data_volume_per_pod() -> None:
    config = resources()[("ConfigMap", "stakewatch")]["data"]
    workers = resources()[("StatefulSet", "stakewatch-worker")]
    spec = workers["spec"]
    (claim,) = spec["volumeClaimTemplates"]
    (container,) = spec["template"]["spec"]["containers"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    # the member slots live in the data dir (streams/agents/membership.py)
    assert mounts[claim["metadata"]["name"]] == config["STAKEWATCH_DATA_DIR"]
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert spec["serviceName"] == "stakewatch-workers"
    headless = resources()[("Service", "stakewatch-workers")]
    assert headless["spec"]["clusterIP"] == "None"


def test_probes_scrape_annotations_and_the_web_port_agree() -> None:
    workers = resources()[("StatefulSet", "stakewatch-worker")]
    template = workers["spec"]["template"]
    (container,) = template["spec"]["containers"]
    port = int(container["args"][container["args"].index("--web-port") + 1])
    (web,) = container["ports"]
    assert web == {"name": "web", "containerPort": port}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "web"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "web"}
    annotations = template["metadata"]["annotations"]
    assert annotations == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(port),
        "prometheus.io/path": "/metrics",
    }
    assert template["spec"]["securityContext"]["runAsUser"] == 10001  # the image's user


def test_every_secret_comes_from_a_secret_and_none_is_in_the_config_map() -> None:
    config = resources()[("ConfigMap", "stakewatch")]["data"]
    assert not [k for k in config if k.endswith(SECRET_SUFFIXES)]
    workers = resources()[("StatefulSet", "stakewatch-worker")]
    (container,) = workers["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    wanted = {
        "STAKEWATCH_API_TOKEN",
        "STAKEWATCH_SNAPSHOT_KEY",
        "STAKEWATCH_SASL_USERNAME",
        "STAKEWATCH_SASL_PASSWORD",
        *(v for k, v in ENV.items() if k != "pagerduty_url"),
    }
    assert wanted <= env.keys()
    for name, entry in env.items():
        assert "value" not in entry and "secretKeyRef" in entry["valueFrom"], name
    volumes = {v["name"]: v for v in workers["spec"]["template"]["spec"]["volumes"]}
    assert volumes["tokens"]["secret"]["secretName"] == "stakewatch-tokens"
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert config["STAKEWATCH_API_TOKENS"].startswith(mounts["tokens"] + "/")
    assert config["STAKEWATCH_ALERTS_CONFIG"].startswith(mounts["alerts"] + "/")


def test_the_worker_accepts_the_manifests_settings(tmp_path: Path, monkeypatch) -> None:
    """The ConfigMap and the example Secrets, as the pod's environment, load as settings
    (tokens file included) and give a routing file the alert loader accepts."""
    config = resources()[("ConfigMap", "stakewatch")]["data"]
    secrets = {
        d["metadata"]["name"]: d["stringData"] for d in documents(K8S / "secrets.example.yaml")
    }
    for var in list(os.environ):
        if var.startswith("STAKEWATCH_"):
            monkeypatch.delenv(var)
    for key, value in config.items():
        if key.startswith("STAKEWATCH_"):
            monkeypatch.setenv(key, value)
    tokens = tmp_path / "tokens.toml"
    tokens.write_text(secrets["stakewatch-tokens"]["tokens.toml"])
    monkeypatch.setenv("STAKEWATCH_API_TOKENS", str(tokens))
    monkeypatch.setenv("STAKEWATCH_API_TOKEN", secrets["stakewatch-api"]["token"])
    monkeypatch.setenv("STAKEWATCH_SASL_USERNAME", secrets["stakewatch-kafka"]["username"])
    monkeypatch.setenv("STAKEWATCH_SASL_PASSWORD", secrets["stakewatch-kafka"]["password"])
    settings = load_settings()
    assert settings.replication_factor == 3 and settings.security_protocol == "SASL_SSL"
    assert settings.web_access().required
    receivers = secrets["stakewatch-receivers"]
    monkeypatch.setenv(ENV["slack"], receivers["slack-webhook-url"])
    monkeypatch.setenv(ENV["pagerduty"], receivers["pagerduty-routing-key"])
    routing = parse_routing(config["alerts.toml"], AlertSettings())
    assert {r.name for r in routing.receivers} == {"risk-slack", "oncall"}
