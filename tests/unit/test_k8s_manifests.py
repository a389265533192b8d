"""deploy/k8s, checked offline (no cluster here): every manifest against the Kubernetes JSON
schemas that the kubernetes-validate wheel ships (strict: an unknown field is an error), then the
things that matter for calls: probes, the drain's grace period, HPA and PDB targets, secrets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from app.config import Settings
from app.drain import Drain
from app.observability.metrics import VoiceMetrics

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
# the oldest minor still in the big clouds' support windows, and the newest the wheel knows
VERSIONS = ("1.30.0", kubernetes_validate.latest_version())
KNOWN_SETTINGS = {n.upper() for n in Settings.model_fields}


def manifests() -> dict[str, dict[str, Any]]:
    """Every resource under deploy/k8s by file name (one per file)."""
    out = {}
    for path in sorted(K8S.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
            assert len(docs) == 1, path.name
            out[path.name] = docs[0]
    return out


def one(kind: str, file: str | None = None) -> dict[str, Any]:
    found = [m for name, m in manifests().items() if m["kind"] == kind and (file is None or name == file)]
    assert len(found) == 1, kind
    return found[0]


def agent_container() -> dict[str, Any]:
    container: dict[str, Any] = one("Deployment")["spec"]["template"]["spec"]["containers"][0]
    return container


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("name", sorted(manifests()))
def test_manifest_matches_the_kubernetes_schema(name: str, version: str) -> None:
    kubernetes_validate.validate(manifests()[name], version, strict=True)


def test_the_schema_check_catches_mistakes() -> None:
    deployment = one("Deployment")
    deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = "660"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, VERSIONS[-1], strict=True)
    deployment = one("Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, VERSIONS[-1], strict=True)


def test_kustomization_applies_every_manifest_but_the_examples() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    examples = {name for name in manifests() if name.endswith(".example.yaml")}
    assert examples == {"secret.example.yaml", "hpa-active-calls.example.yaml"}
    assert sorted(kustomization["resources"]) == sorted(set(manifests()) - examples)
    assert kustomization["images"][0]["name"] == agent_container()["image"]


def test_probes_point_at_readyz_and_healthz_on_the_container_port() -> None:
    container = agent_container()
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": 8000}
    assert container["command"][:2] == ["voice-agent", "serve"]
    assert container["command"][container["command"].index("--port") + 1] == "8000"
    paths = {}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        get = container[probe]["httpGet"]
        assert get["port"] in (*ports, *ports.values()), probe
        paths[probe] = get["path"]
    assert paths == {"startupProbe": "/healthz", "readinessProbe": "/readyz", "livenessProbe": "/healthz"}


def test_grace_period_covers_the_drain_timeout() -> None:
    drain = Drain(timeout_s=float(one("ConfigMap")["data"]["DRAIN_TIMEOUT"]))
    pod = one("Deployment")["spec"]["template"]["spec"]
    # SIGTERM to SIGKILL covers the longest drain the service's own schedule allows
    assert pod["terminationGracePeriodSeconds"] >= drain.deadline_s
    # a rolling update adds a pod before an old one drains: capacity never drops
    assert one("Deployment")["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}


def test_pod_runs_non_root_with_the_images_user() -> None:
    pod = one("Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001  # USER in the Dockerfile
    security = agent_container()["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert "cpu" in agent_container()["resources"]["requests"]  # the HPA's utilisation needs it


def test_selectors_match_the_pod_labels() -> None:
    deployment = one("Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    for selector in (
        deployment["spec"]["selector"]["matchLabels"],
        one("PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
        one("Service")["spec"]["selector"],
    ):
        assert selector.items() <= labels.items()
    assert one("PodDisruptionBudget")["spec"]["minAvailable"] == 1


@pytest.mark.parametrize("file", ["hpa.yaml", "hpa-active-calls.example.yaml"])
def test_hpa_targets_the_deployment(file: str) -> None:
    hpa = one("HorizontalPodAutoscaler", file)
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": one("Deployment")["metadata"]["name"],
    }
    assert hpa["spec"]["minReplicas"] >= 2


def test_active_calls_hpa_names_the_metric_the_service_exports() -> None:
    metric = one("HorizontalPodAutoscaler", "hpa-active-calls.example.yaml")["spec"]["metrics"][0]
    name = metric["pods"]["metric"]["name"]
    exported = {m.name for m in VoiceMetrics().registry.collect()}
    assert name in exported


def test_ingress_routes_the_public_paths_with_websocket_timeouts() -> None:
    ingress = one("Ingress")
    notes = ingress["metadata"]["annotations"]
    for key in ("proxy-read-timeout", "proxy-send-timeout"):
        assert int(notes[f"nginx.ingress.kubernetes.io/{key}"]) >= 3600
    service = one("Service")
    rule = ingress["spec"]["rules"][0]
    assert rule["host"] in ingress["spec"]["tls"][0]["hosts"]
    paths = rule["http"]["paths"]
    assert {p["path"] for p in paths} == {"/vobiz", "/calls"}  # the media socket is /vobiz/media/...
    for path in paths:
        assert path["backend"]["service"] == {"name": service["metadata"]["name"], "port": {"name": "http"}}
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    public_url = one("ConfigMap")["data"]["PUBLIC_URL"]
    assert public_url == f"https://{rule['host']}"


def test_settings_come_from_the_configmap_and_the_secret() -> None:
    config, secret = one("ConfigMap"), one("Secret")
    sources = agent_container()["envFrom"]
    assert sources == [
        {"configMapRef": {"name": config["metadata"]["name"]}},
        {"secretRef": {"name": secret["metadata"]["name"]}},
    ]
    assert set(config["data"]) <= KNOWN_SETTINGS
    assert set(secret["stringData"]) <= KNOWN_SETTINGS
    assert not set(config["data"]) & set(secret["stringData"])
    shared = {"VOBIZ_AUTH_TOKEN", "STREAM_TOKEN_SECRET", "DATABASE_URL", "REDIS_URL"}
    assert shared <= set(secret["stringData"])


def test_no_secret_value_is_committed() -> None:
    for name, manifest in manifests().items():
        if manifest["kind"] == "Secret":
            assert "data" not in manifest, name
            assert all(value == "" for value in manifest["stringData"].values()), name
    config = one("ConfigMap")["data"]
    for key in config:
        assert not any(word in key for word in ("TOKEN", "KEY", "SECRET", "PASSWORD")), key
