"""The served OpenAPI document is the repository's, the /docs page loads only what the gateway serves, and real
answers of every kind fit the document's schemas."""

from __future__ import annotations

import datetime as dt
import random
import re
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from jsonschema import Draft202012Validator, FormatChecker

from core import campaign as campaigns
from core.rollup import Rollup
from core.settings import Settings
from loadtest import sample
from loadtest.client import SignedClient
from tests.conftest import signed

ROOT = Path(__file__).resolve().parent.parent.parent
DOC = orjson.loads((ROOT / "docs" / "openapi.json").read_bytes())


def test_the_served_document_is_the_repositorys(base_url: str) -> None:
    served = httpx.get(f"{base_url}/openapi.json")
    assert served.status_code == 200 and served.content == (ROOT / "docs" / "openapi.json").read_bytes()


def test_the_docs_page_loads_nothing_the_gateway_does_not_serve(base_url: str) -> None:
    page = httpx.get(f"{base_url}/docs")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assets = re.findall(r'(?:src|href|spec-url)="([^"]+)"', page.text)
    assert assets and all(a.startswith("/") and not a.startswith("//") for a in assets), assets
    for asset in assets:
        assert httpx.get(f"{base_url}{asset}").status_code == 200, asset
    script = httpx.get(f"{base_url}/docs/static/redoc.standalone.js").text
    assert "cdn.redoc.ly" not in script and "/docs/static/logo-mini.svg" in script  # its one fetch, made local
    assert httpx.get(f"{base_url}/docs/static/logo-mini.svg").status_code == 200


def _schema(path: str, method: str, status: int) -> tuple[str, dict[str, Any]]:
    response = DOC["paths"][path][method]["responses"][str(status)]
    if "$ref" in response:
        response = DOC["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    media, content = next(iter(response["content"].items()))
    return media, content["schema"]


def conforms(resp: httpx.Response, path: str, method: str = "get") -> None:
    """The answer is one the document names for this operation and status, of its media type and schema."""
    media, schema = _schema(path, method, resp.status_code)
    assert resp.headers["content-type"].startswith(media), (path, resp.headers["content-type"])
    validator = Draft202012Validator({**schema, "components": DOC["components"]}, format_checker=FormatChecker())
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(resp.json())]
    assert not errors, (path, resp.status_code, errors[:3])


@pytest.fixture
def admin(base_url: str) -> Any:
    yield from signed(base_url, "demo-admin")


@pytest.fixture
def auditor(base_url: str) -> Any:
    yield from signed(base_url, "demo-auditor")


def test_real_answers_fit_the_document(
    channel: SignedClient,
    channel2: SignedClient,
    draw: SignedClient,
    admin: SignedClient,
    auditor: SignedClient,
    base_url: str,
    drain: Any,
    settings: Settings,
) -> None:
    rng = random.Random()
    broken = [inv for _, inv in sample.broken_invoices(rng)]
    first = sample.invoice(rng)
    upload = channel.upload([first, first, sample.invoice(rng, ending="999"), *broken])
    conforms(upload, "/v1/invoices", "post")
    assert {r["status"] for r in upload.json()["results"]} >= {"accepted", "duplicate", "rejected"}
    conforms(channel2.upload([first]), "/v1/invoices", "post")
    key = upload.json()["results"][0]["key"]
    conforms(channel2.status(key), "/v1/invoices/{key}")  # its duplicate, before any worker ran
    drain()
    conforms(channel.status(key), "/v1/invoices/{key}")
    conforms(channel.status("26349999999999999997"), "/v1/invoices/{key}")  # 404 problem
    conforms(channel.request("GET", "/v1/events?limit=50"), "/v1/events")
    conforms(channel.request("GET", "/v1/events?limit=0"), "/v1/events")  # 400 problem
    conforms(channel.request("GET", "/v1/invoices?user=u1"), "/v1/invoices")
    body = orjson.dumps({"key": key, "receipt": upload.json()["results"][0]["receipt"]})
    conforms(channel.request("POST", "/v1/receipts/verify", body), "/v1/receipts/verify", "post")
    conforms(draw.request("GET", "/v1/keys"), "/v1/keys")
    conforms(httpx.get(f"{base_url}/v1/keys"), "/v1/keys")  # 401 problem
    reversal = orjson.dumps({"reversals": [{"number": first["number"], "red_number": "2634" + "8" * 16}, {"x": 1}]})
    conforms(channel.request("POST", "/v1/reversals", reversal), "/v1/reversals", "post")
    conforms(draw.feed(after=0, limit=3), "/v1/feed")
    conforms(draw.request("GET", "/v1/events"), "/v1/events")  # 403 problem: not a channel
    conforms(admin.request("GET", "/v1/admin/held?limit=5"), "/v1/admin/held")
    conforms(admin.request("GET", "/v1/admin/reversals-by-seller?days=7"), "/v1/admin/reversals-by-seller")
    conforms(httpx.get(f"{base_url}/healthz"), "/healthz")
    conforms(httpx.get(f"{base_url}/readyz"), "/readyz")
    conforms(httpx.get(f"{base_url}/v1/feed"), "/v1/feed")  # 401 problem
    drain()
    today = Rollup.of(campaigns.load(settings.campaign_file)).day(dt.datetime.now(dt.UTC)).isoformat()
    daily = auditor.request("GET", f"/v1/reports/daily?date={today}")
    conforms(daily, "/v1/reports/daily")
    assert daily.json()["days"][0]["rejected_by_reason"] and daily.json()["days"][0]["by_channel"]
    csv = auditor.request("GET", f"/v1/reports/daily?date={today}", headers={"Accept": "text/csv"})
    assert csv.headers["content-type"].startswith("text/csv")
    described = DOC["paths"]["/v1/reports/daily"]["get"]["responses"]["200"]["content"]["text/csv"]["schema"]
    assert ", ".join(f"`{c}`" for c in csv.text.splitlines()[0].split(",")) in described["description"]
    conforms(auditor.request("GET", "/v1/reports/daily?date=2026-3-1"), "/v1/reports/daily")  # 400 problem
    conforms(channel.request("GET", f"/v1/reports/daily?date={today}"), "/v1/reports/daily")  # 403 problem
    conforms(admin.request("GET", f"/v1/admin/reconciliation?date={today}&limit=5"), "/v1/admin/reconciliation")
    conforms(auditor.request("GET", "/v1/admin/reconciliation"), "/v1/admin/reconciliation")  # 400 problem
