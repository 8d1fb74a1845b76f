"""Pure parts of the console's pages: the channels' figures from hourly rows, the audit log's query per filter,
the metrics' route template of a mounted page."""

from __future__ import annotations

import datetime as dt

from gateway.console import auditlog, channels
from gateway.console.routes import routes
from gateway.middleware import _template

H0 = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)
H1 = H0 + dt.timedelta(hours=1)


def test_channel_figures_add_refusals_and_shares_and_list_quiet_channels() -> None:
    rows = [
        {"hour": H0, "channel": "a", "metric": "received", "n": 6},
        {"hour": H1, "channel": "a", "metric": "received", "n": 2},
        {"hour": H0, "channel": "a", "metric": "duplicate", "n": 2},
        {"hour": H0, "channel": "a", "metric": "rejected", "n": 1},
        {"hour": H1, "channel": "a", "metric": "capped", "n": 1},
        {"hour": H1, "channel": "a", "metric": "reversed", "n": 3},
    ]
    busy, quiet = channels.figures(rows, ["quiet", "a"], [H0, H1])
    assert busy["channel"] == "a" and busy["series"] == [6, 2] and busy["peak"] == 6 and busy["per_hour"] == 4.0
    assert busy["refused"] == 2 and busy["refused_share"] == 0.25 and busy["duplicate_share"] == 0.25
    assert busy["reversed"] == 3
    assert quiet["channel"] == "quiet" and quiet["received"] == 0 and quiet["refused_share"] == 0.0


def test_the_audit_logs_query_has_one_condition_per_filter() -> None:
    sql, args = auditlog.query(None, None, None)
    assert "WHERE true" in sql and args == []
    sql, args = auditlog.query("alice", "release", 50)
    assert "actor = $1 AND action = $2 AND id < $3" in sql and args == ["alice", "release", 50]


def _scope(path: str, method: str = "GET") -> dict[str, object]:
    return {"type": "http", "path": path, "method": method, "root_path": "", "path_params": {}, "headers": []}


def test_a_mounted_page_is_counted_under_its_template_never_its_path() -> None:
    table = routes()
    assert _template(table, _scope("/console/cases/42")) == "/console/cases/{case:int}"
    assert _template(table, _scope("/console/held", "POST")) == "/console/held"
    assert _template(table, _scope("/console/")) == "/console/"
    assert _template(table, _scope("/console/anything/else")) == "/console/{rest:path}"
    assert _template(table, _scope("/nowhere")) == "other"
