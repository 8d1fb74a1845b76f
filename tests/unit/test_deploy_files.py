"""The deploy files parse and say what the code does."""

import configparser
import importlib
import runpy
import shutil
import subprocess
import tomllib
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from core import campaign as campaigns
from core.settings import variables

DEPLOY = Path(__file__).resolve().parent.parent.parent / "deploy"


def manifests() -> list[dict]:  # type: ignore[type-arg]
    docs = []
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def test_every_manifest_is_a_named_kubernetes_object() -> None:
    docs = manifests()
    kinds = sorted(d["kind"] for d in docs)
    assert kinds == sorted(
        [
            "ConfigMap",
            "Secret",
            "Deployment",
            "Service",
            "HorizontalPodAutoscaler",
            "PodDisruptionBudget",
            "Deployment",
            "HorizontalPodAutoscaler",
            "PodDisruptionBudget",
            "PrometheusRule",
            "Deployment",
            "PersistentVolumeClaim",
        ]
    )
    for d in docs:
        assert d["apiVersion"] and d["metadata"]["name"]


KUBERNETES = "1.30"  # the oldest Kubernetes these manifests promise to run on


@pytest.mark.parametrize("doc", [d for d in manifests() if d["kind"] != "PrometheusRule"], ids=lambda d: d["kind"])
def test_manifest_matches_the_kubernetes_schema_offline(doc: dict) -> None:  # type: ignore[type-arg]
    # strict: a field the schema does not know (a typo, a wrong indentation) is an error too
    kubernetes_validate.validate(doc, KUBERNETES, strict=True)


def test_prometheus_rule_is_checked_as_far_as_its_crd_allows(tmp_path: Path) -> None:
    """kubernetes-validate has no schema for the prometheus-operator's CRD: its metadata is checked as any
    object's, and its spec (the rule groups) by promtool."""
    rule = next(d for d in manifests() if d["kind"] == "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    with pytest.raises(kubernetes_validate.SchemaNotFoundError):
        kubernetes_validate.validate(rule, KUBERNETES, strict=True)
    kubernetes_validate.validate(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": rule["metadata"]}, KUBERNETES, strict=True
    )
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rule["spec"]))
    promtool = shutil.which("promtool")
    assert promtool, "make system-deps installs Debian's prometheus package"
    check = subprocess.run([promtool, "check", "rules", str(tmp_path / "rules.yml")], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_manifests_hold_what_sre_expect() -> None:
    docs = manifests()
    hpas = {d["metadata"]["name"]: d["spec"]["metrics"] for d in docs if d["kind"] == "HorizontalPodAutoscaler"}
    assert {m["resource"]["name"] for m in hpas["prize-gateway"] if m["type"] == "Resource"} == {"cpu"}
    lag = [m for m in hpas["prize-workers"] if m["type"] in ("External", "Pods")]
    assert lag and lag[0][lag[0]["type"].lower()]["metric"]["name"] == "ratelimit_pipeline_oldest_entry_age_seconds"
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    for pdb in (d for d in docs if d["kind"] == "PodDisruptionBudget"):
        selected = pdb["spec"]["selector"]["matchLabels"]
        assert any(selected == dep["spec"]["selector"]["matchLabels"] for dep in deployments.values())
    gateway = deployments["prize-gateway"]["spec"]["template"]["spec"]
    drain_s = float(next(d for d in docs if d["kind"] == "ConfigMap")["data"]["GATEWAY_DRAIN_DELAY_S"])
    graceful_s = gunicorn_config()["graceful_timeout"]
    assert drain_s < graceful_s < gateway["terminationGracePeriodSeconds"]


def gunicorn_config() -> dict:  # type: ignore[type-arg]
    return runpy.run_path(str(DEPLOY / "gunicorn.conf.py"))


def test_gunicorn_config_recycles_with_jitter_and_drains() -> None:
    conf = gunicorn_config()
    assert conf["max_requests"] > conf["max_requests_jitter"] > 0
    assert conf["keepalive"] > 0 and conf["graceful_timeout"] > 0
    module, name = conf["worker_class"].rsplit(".", 1)
    assert getattr(importlib.import_module(module), name).__name__ == "DrainingWorker"


def test_gateway_probes_and_settings_match_the_code() -> None:
    docs = manifests()
    gateway = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "prize-gateway")
    container = gateway["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    known = {var for var, _, _ in variables()}
    config = next(d for d in docs if d["kind"] == "ConfigMap")["data"]
    secret = next(d for d in docs if d["kind"] == "Secret")["stringData"]
    for name in [*config, *secret]:
        if name.startswith("GATEWAY_"):
            assert name in known, f"{name} is not a setting"
    for name, selector in ((d["metadata"]["name"], d["spec"]["selector"]) for d in docs if d["kind"] == "Service"):
        assert selector == gateway["spec"]["selector"]["matchLabels"], name


def test_prometheus_rule_carries_exactly_the_alert_rules() -> None:
    rule = next(d for d in manifests() if d["kind"] == "PrometheusRule")
    assert rule["spec"] == yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())


def test_systemd_units_run_the_real_commands() -> None:
    for name, command in (
        ("prize-gateway.service", "gunicorn -c deploy/gunicorn.conf.py"),
        ("prize-workers@.service", "gateway-worker run"),
        ("prize-simulator.service", "gateway-worker simulator"),
        ("prize-export.service", "gateway-worker export"),
    ):
        unit = configparser.ConfigParser(strict=False, interpolation=None)
        unit.read(DEPLOY / "systemd" / name)
        assert command in unit["Service"]["ExecStart"]
        assert unit["Service"]["EnvironmentFile"] == "/etc/prize-gateway/env"
        assert unit["Install"]["WantedBy"] == "multi-user.target"


def test_campaign_files_load_and_redis_config_never_evicts() -> None:
    for path in [*(DEPLOY / "campaigns").glob("*.toml")]:
        assert campaigns.load(path).id
        tomllib.loads(path.read_text())
    redis_conf = (DEPLOY / "redis" / "redis.conf").read_text()
    assert "maxmemory-policy noeviction" in redis_conf and "appendonly yes" in redis_conf


def test_postgres_notes_cover_durability_backup_and_partitioning() -> None:
    notes = (DEPLOY / "postgres" / "README.md").read_text()
    for needed in ("synchronous_commit", "point-in-time", "PARTITION BY RANGE (accepted_at)", "invoice_keys"):
        assert needed in notes, needed
