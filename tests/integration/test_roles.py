"""Who may do what: every route of the app, called by each role (and unsigned), against the status it must get.
The routes come from the app itself, so a new route without a row here fails; docs/security.md's table is this
one, and a test keeps the two equal."""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

import httpx
import msgspec
import orjson
import pytest

from core.settings import Settings
from gateway.app import create_app
from loadtest import sample
from loadtest.client import SignedClient

ROOT = Path(__file__).resolve().parents[2]
ROLES = ("none", "channel", "draw", "admin", "auditor")
CLIENTS = {"channel": "demo-channel", "draw": "demo-draw", "admin": "demo-admin", "auditor": "demo-auditor"}
OPEN = dict.fromkeys(ROLES, 200)  # operations endpoints: no signature, anyone
DAY = "2026-03-01"
READERS = ("admin", "auditor")


def only(role: str | tuple[str, ...], status: int = 200) -> dict[str, int]:
    """The roles that may call an endpoint get ``status``; any other role 403; an unsigned request 401."""
    allowed = (role,) if isinstance(role, str) else role
    return {r: 401 if r == "none" else status if r in allowed else 403 for r in ROLES}


# (method, route template) -> (the request's path, its body, the status each role gets). A key is chosen that no
# invoice has: a channel's status read of it is 404, and an admin's decision on it too.
TABLE: dict[tuple[str, str], tuple[str, dict[str, Any] | None, dict[str, int]]] = {
    ("POST", "/v1/invoices"): ("/v1/invoices", {"invoices": "SAMPLE"}, only("channel", 202)),
    ("GET", "/v1/invoices"): ("/v1/invoices?user=u1", None, only("channel")),
    ("GET", "/v1/invoices/{key}"): ("/v1/invoices/26349999999999999993", None, only("channel", 404)),
    ("POST", "/v1/reversals"): (
        "/v1/reversals",
        {"reversals": [{"number": "26349999999999999993", "red_number": "2634" + "9" * 16}]},
        only("channel", 202),
    ),
    ("GET", "/v1/feed"): ("/v1/feed?after=0&limit=1", None, only("draw")),
    ("GET", "/v1/events"): ("/v1/events?limit=1", None, only("channel")),
    ("GET", "/v1/keys"): ("/v1/keys", None, only(("channel", "draw", "admin", "auditor"))),
    ("POST", "/v1/receipts/verify"): ("/v1/receipts/verify", {"key": "1", "receipt": "x"}, only("channel")),
    ("GET", "/v1/admin/held"): ("/v1/admin/held?limit=1", None, only("admin")),
    ("POST", "/v1/admin/held/{key}"): (
        "/v1/admin/held/26349999999999999993",
        {"decision": "release", "note": "checked"},
        only("admin", 404),
    ),
    ("GET", "/v1/admin/reversals-by-seller"): ("/v1/admin/reversals-by-seller?days=1", None, only("admin")),
    ("GET", "/v1/admin/reconciliation"): (f"/v1/admin/reconciliation?date={DAY}&limit=1", None, only(READERS)),
    ("GET", "/v1/reports/daily"): (f"/v1/reports/daily?date={DAY}", None, only(READERS)),
    ("GET", "/v1/prizes"): ("/v1/prizes?limit=1", None, only("channel")),
    ("POST", "/v1/prizes/{prize_id}/paid"): (
        "/v1/prizes/no-such-draw:1/paid",
        {"payment_ref": "r1"},
        only("channel", 404),
    ),
    ("POST", "/v1/draws"): ("/v1/draws", {}, only("draw", 400)),
    ("GET", "/v1/draws/{draw_id}"): (
        "/v1/draws/no-such-draw",
        None,
        only(("channel", "draw", "admin", "auditor"), 404),
    ),
    ("POST", "/v1/draws/{draw_id}/awards"): (
        "/v1/draws/no-such-draw/awards",
        {"awards": [{"prize_id": "no-such-draw:1", "tier": "first", "amount_fen": 100, "key": "26349999999999999993"}]},
        only("draw", 404),
    ),
    ("POST", "/v1/draws/{draw_id}/result"): ("/v1/draws/no-such-draw/result", {}, only("draw", 404)),
    ("GET", "/v1/admin/prize-ledger"): ("/v1/admin/prize-ledger", None, only(READERS)),
    ("GET", "/healthz"): ("/healthz", None, OPEN),
    ("GET", "/readyz"): ("/readyz", None, OPEN),
    ("GET", "/metrics"): ("/metrics", None, OPEN),
    ("GET", "/openapi.json"): ("/openapi.json", None, OPEN),
    ("GET", "/docs"): ("/docs", None, OPEN),
    ("GET", "/docs/static/redoc.standalone.js"): ("/docs/static/redoc.standalone.js", None, OPEN),
    ("GET", "/docs/static/logo-mini.svg"): ("/docs/static/logo-mini.svg", None, OPEN),
}


def served_routes() -> set[tuple[str, str]]:
    """(method, template) of every route the app serves."""
    settings = Settings(campaign_file=str(ROOT / "deploy" / "campaigns" / "hefei-2026.toml"))
    secrets = msgspec.structs.replace(settings.secrets, person_secret="p" * 16, receipt_signing_key="A" * 43 + "=")
    app = create_app(msgspec.structs.replace(settings, secrets=secrets))
    return {(m, r.path) for r in app.routes for m in getattr(r, "methods", None) or () if m != "HEAD"}


def test_every_route_of_the_app_has_a_row() -> None:
    assert served_routes() == set(TABLE), "a route without a row in TABLE, or a row of no route"


def _body(body: dict[str, Any] | None) -> bytes:
    if body is None:
        return b""
    if body.get("invoices") == "SAMPLE":
        body = {"invoices": [sample.invoice(random.Random())]}
    return orjson.dumps(body)


@pytest.mark.parametrize(("method", "route"), sorted(TABLE, key=lambda k: (k[1], k[0])))
def test_each_role_gets_its_status(base_url: str, settings: Settings, method: str, route: str) -> None:
    path, body, expected = TABLE[(method, route)]
    got = {}
    for role in ROLES:
        content = _body(body)
        if role == "none":
            resp = httpx.request(method, f"{base_url}{path}", content=content, timeout=30)
        else:
            with SignedClient(base_url, CLIENTS[role], f"{CLIENTS[role]}-secret") as client:
                resp = client.request(method, path, content, {"Content-Type": "application/json"} if content else {})
        got[role] = resp.status_code
        if resp.status_code >= 400:
            assert resp.headers["content-type"] == "application/problem+json", (role, resp.text)
    assert got == expected


def test_docs_security_md_has_this_table() -> None:
    text = (ROOT / "docs" / "security.md").read_text()
    table = text.split("## Who may do what", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    found = {}
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        method, route = re.fullmatch(r"`(\w+) (\S+)`", cells[0]).groups()  # type: ignore[union-attr]
        found[(method, route)] = dict(zip(ROLES, (int(c) for c in cells[1:]), strict=True))
    assert found == {k: v[2] for k, v in TABLE.items()}
