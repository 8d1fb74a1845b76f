"""A real Prometheus (Debian's server binary) scrapes the test stack's gateway and a worker with its own
/metrics, evaluates the project's own alert rules (time-scaled), and the lag and stall alerts fire once the
workers are stopped while uploads go on."""

from __future__ import annotations

import copy
import random
import re
import shutil
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from loadtest import sample
from loadtest.client import SignedClient
from tests.unit.test_dashboard import exprs

ALERTS = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "alerts.yml"
# Test time runs this many times faster than production time: every range window and `for:` shrinks by it.
SPEED = 30
# Thresholds that are durations in seconds: shrunk by hand, each checked to be in the real rule.
LAG = "ratelimit_pipeline_oldest_entry_age_seconds"
THRESHOLDS = {"PipelineLagHigh": (f"{LAG}) > 60", f"{LAG}) > 3")}
UNITS_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _shrink(duration: str) -> str:
    seconds = sum(int(n) * UNITS_S[u] for n, u in re.findall(r"(\d+)([smhd])", duration))
    return f"{max(2, seconds // SPEED)}s"


def scaled_rules(source: dict[str, Any]) -> dict[str, Any]:
    """The project's alert rules with every range window and ``for:`` shrunk by SPEED."""
    rules = copy.deepcopy(source)
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule["expr"] = re.sub(r"\[(\w+)\]", lambda m: f"[{_shrink(m.group(1))}]", rule["expr"])
            if "for" in rule:
                rule["for"] = _shrink(rule["for"])
            if (swap := THRESHOLDS.get(rule.get("alert", ""))) is not None:
                assert swap[0] in rule["expr"], f"{rule['alert']} changed: update THRESHOLDS"
                rule["expr"] = rule["expr"].replace(*swap)
    return rules


@pytest.fixture
def worker_metrics(stack: Any, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """A worker serving its own /metrics, with its own multiprocess folder (as on Kubernetes)."""
    from deploy.devstack import VENV_BIN, free_port

    port = free_port()
    folder = tmp_path / "worker-metrics"
    folder.mkdir()
    worker = stack._spawn(
        "worker-prometheus",
        [str(VENV_BIN / "gateway-worker"), "run"],
        env={"GATEWAY_WORKER_METRICS_PORT": str(port), "PROMETHEUS_MULTIPROC_DIR": str(folder)},
    )
    try:
        yield worker, port
    finally:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            worker.wait(20)


@pytest.fixture
def prometheus(stack: Any, tmp_path: Path, worker_metrics: tuple[Any, int]) -> Iterator[str]:
    from deploy.devstack import free_port, http_ok, wait_until

    binary = shutil.which("prometheus")
    assert binary, "Debian's prometheus package is missing: make system-deps installs it"
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(scaled_rules(yaml.safe_load(ALERTS.read_text()))))
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": ["rules.yml"],
        "scrape_configs": [
            {"job_name": "gateway", "static_configs": [{"targets": [f"127.0.0.1:{stack.port}"]}]},
            {"job_name": "workers", "static_configs": [{"targets": [f"127.0.0.1:{worker_metrics[1]}"]}]},
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    proc = stack._spawn(
        "prometheus",
        [
            binary,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until("prometheus", lambda: proc.poll() is None and http_ok(f"{url}/-/ready"), 30)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)


def _alerts(url: str) -> dict[str, str]:
    """alertname -> state ("pending" or "firing") of the alerts Prometheus holds now."""
    alerts = httpx.get(f"{url}/api/v1/alerts").json()["data"]["alerts"]
    return {a["labels"]["alertname"]: a["state"] for a in alerts}


def _targets_up(url: str) -> set[str]:
    targets = httpx.get(f"{url}/api/v1/targets").json()["data"]["activeTargets"]
    return {t["labels"]["job"] for t in targets if t["health"] == "up"}


def test_rules_are_scaled_and_thresholds_still_exist() -> None:
    rules = scaled_rules(yaml.safe_load(ALERTS.read_text()))
    by_name = {r["alert"]: r for g in rules["groups"] for r in g["rules"] if "alert" in r}
    assert by_name["WorkersStalled"]["for"] == "10s" and "[10s]" in by_name["WorkersStalled"]["expr"]
    assert by_name["PipelineLagHigh"]["expr"].endswith("> 3")


def test_stopping_the_workers_under_uploads_fires_lag_and_stall_alerts(
    stack: Any, base_url: str, prometheus: str, worker_metrics: tuple[Any, int], drain: Any, wait_for: Any
) -> None:
    worker, _ = worker_metrics
    wait_for(lambda: _targets_up(prometheus) == {"gateway", "workers"}, 20)
    stop = threading.Event()
    rng = random.Random(6)

    def upload_until_stopped() -> None:
        with SignedClient(base_url, "demo-channel", "demo-channel-secret") as channel:
            while not stop.wait(0.2):
                assert channel.upload([sample.invoice(rng) for _ in range(5)]).status_code == 202

    for expr in exprs():  # the dashboard's queries are PromQL this Prometheus accepts
        answer = httpx.get(f"{prometheus}/api/v1/query", params={"query": expr}).json()
        assert answer["status"] == "success", (expr, answer)
    uploader = threading.Thread(target=upload_until_stopped)
    uploader.start()
    try:
        # The worker keeps up: the pipeline alerts do not fire while it runs.
        wait_for(lambda: _query(prometheus, "sum(worker_invoices_total)") > 0, 20)
        quiet = _firing(prometheus)
        assert "PipelineLagHigh" not in quiet and "WorkersStalled" not in quiet, quiet
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(20) == 0
        try:
            wait_for(lambda: {"PipelineLagHigh", "WorkersStalled"} <= _firing(prometheus), 45)
        except TimeoutError:
            raise AssertionError(f"alerts after 45 s: {_alerts(prometheus)}") from None
        assert "GatewayDown" not in _alerts(prometheus)
        # Each leads the operator to its runbook section.
        sections = set(re.findall(r"^## (\w+)$", (ALERTS.parent.parent / "RUNBOOK.md").read_text(), re.M))
        for alert in httpx.get(f"{prometheus}/api/v1/alerts").json()["data"]["alerts"]:
            anchor = alert["annotations"]["runbook"].split("#", 1)[1]
            assert anchor in {s.lower() for s in sections}, alert["labels"]["alertname"]
    finally:
        stop.set()
        uploader.join()
    drain()  # leave the stream empty for the tests that follow


def _firing(url: str) -> set[str]:
    return {name for name, state in _alerts(url).items() if state == "firing"}


def _query(url: str, promql: str) -> float:
    result = httpx.get(f"{url}/api/v1/query", params={"query": promql}).json()["data"]["result"]
    return float(result[0]["value"][1]) if result else 0.0
