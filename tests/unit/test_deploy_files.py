"""The deploy files parse and say what the code does."""

import configparser
import tomllib
from pathlib import Path

import yaml

from gateway import campaign as campaigns
from gateway.settings import Settings

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
        ]
    )
    for d in docs:
        assert d["apiVersion"] and d["metadata"]["name"]


def test_gateway_probes_and_settings_match_the_code() -> None:
    docs = manifests()
    gateway = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "prize-gateway")
    container = gateway["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    fields = set(Settings.__struct_fields__)
    config = next(d for d in docs if d["kind"] == "ConfigMap")["data"]
    secret = next(d for d in docs if d["kind"] == "Secret")["stringData"]
    for name in [*config, *secret]:
        if name.startswith("GATEWAY_"):
            assert name[len("GATEWAY_") :].lower() in fields, f"{name} is not a setting"
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
