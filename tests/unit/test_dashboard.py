"""The Grafana dashboard parses, follows the pipeline from left to right, and queries only metrics the code
exports (or recording rules of alerts.yml)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import REGISTRY

import dedup.metrics
import gateway.metrics
import ratelimit.metrics
import workers.metrics

DEPLOY = Path(__file__).resolve().parent.parent.parent / "deploy"
DASHBOARD = DEPLOY / "grafana" / "prize-gateway.json"
STAGES = [
    *("Intake", "Admission and shedding", "Dedup", "Stream lag", "Verification and risk", "Sink", "Feed freshness"),
    "National export",
]
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset"}
SUFFIXES = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"], "summary": ["_count", "_sum"]}


def panels() -> list[dict[str, Any]]:
    return list(json.loads(DASHBOARD.read_text())["panels"])


def exprs() -> list[str]:
    return [t["expr"] for p in panels() for t in p.get("targets", [])]


def metric_names(expr: str) -> set[str]:
    """The series names an expression selects: identifiers that are not functions, keywords, label
    matchers, grouping labels, durations or strings."""
    expr = re.sub(r'"[^"]*"', "", expr)
    expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", expr)
    names = set(re.findall(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()", expr))
    return {n for n in names if n not in PROMQL_WORDS}


def exported() -> set[str]:
    """Series names of every metric the gateway, admission, dedup and workers define, and the recording rules."""
    assert {gateway.metrics.__name__, ratelimit.metrics.__name__, dedup.metrics.__name__, workers.metrics.__name__}
    names = {"up"}
    for family in REGISTRY.collect():
        names |= {family.name + suffix for suffix in SUFFIXES.get(family.type, [""])}
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    names |= {r["record"] for g in rules["groups"] for r in g["rules"] if "record" in r}
    return names


def test_metric_names_are_parsed_out_of_promql() -> None:
    expr = 'histogram_quantile(0.99, sum by (le) (rate(a_bucket{route="/v1/x"}[5m]))) / sum(b_total) or vector(0)'
    assert metric_names(expr) == {"a_bucket", "b_total"}


def test_dashboard_queries_only_exported_metrics() -> None:
    known = exported()
    assert "gateway_feed_oldest_unfed_age_seconds" in known and "worker_verify_duration_seconds_bucket" in known
    assert "gateway_export_oldest_pending_age_seconds" in known and "worker_export_delivery_seconds_bucket" in known
    used = set().union(*(metric_names(e) for e in exprs()))
    assert used - known == set()
    assert len(used) > 30


def test_rows_follow_the_pipeline_top_to_bottom_and_the_glance_row_left_to_right() -> None:
    rows = sorted((p for p in panels() if p["type"] == "row"), key=lambda p: p["gridPos"]["y"])
    assert [r["title"].split(" ", 1)[1] for r in rows] == STAGES
    glance = sorted((p for p in panels() if p["gridPos"]["y"] == 0), key=lambda p: p["gridPos"]["x"])
    titles = [p["title"] for p in glance]
    assert titles[0] == "Intake" and titles[-1] == "Feed waits"
    assert sum(p["gridPos"]["w"] for p in glance) == 24
    for p in panels():
        assert p["type"] == "row" or (p["targets"] and p["datasource"]["uid"] == "${datasource}"), p["title"]
