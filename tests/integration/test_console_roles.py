"""The console's role matrix, route by route: every route of gateway/console/routes.py is in this test's own table
(a new route fails here until someone says who may use it), and each role is refused (403) exactly where the
table says, and nowhere else. Without a session, every route but the login form and the static files sends the
browser to the login page."""

from __future__ import annotations

import random
from typing import Any

import pytest
from starlette.routing import Mount, Route

from gateway.console.routes import routes
from loadtest.client import SignedClient
from tests.console import Console, add_staff, held_invoice

EVERYONE = {"reviewer", "support", "analyst", "auditor", "admin"}
READ_INVOICES = {"reviewer", "support", "auditor", "admin"}
FIGURES = {"analyst", "auditor", "admin"}
KEEP_CASES = {"support", "admin"}
PUBLIC = {("GET", "/console/login"), ("POST", "/console/login"), ("GET", "/console/static/{name}")}
# Who may use each route (method, template). The catch-all answers 404 to everyone with a session.
TABLE: dict[tuple[str, str], set[str]] = {
    ("GET", "/console/"): EVERYONE,
    ("POST", "/console/logout"): EVERYONE,
    ("GET", "/console/today"): EVERYONE,
    ("GET", "/console/held"): {"reviewer", "auditor", "admin"},
    ("POST", "/console/held"): {"reviewer", "admin"},
    ("GET", "/console/invoices"): READ_INVOICES,
    ("POST", "/console/invoices"): READ_INVOICES,
    ("GET", "/console/cases"): READ_INVOICES,
    ("POST", "/console/cases"): KEEP_CASES,
    ("GET", "/console/cases/new"): KEEP_CASES,
    ("GET", "/console/cases/{case:int}"): READ_INVOICES,
    ("POST", "/console/cases/{case:int}/notes"): KEEP_CASES,
    ("POST", "/console/cases/{case:int}/change"): KEEP_CASES,
    ("GET", "/console/reports"): FIGURES,
    ("GET", "/console/reports/daily.csv"): FIGURES,
    ("GET", "/console/reports/daily.xlsx"): FIGURES,
    ("GET", "/console/channels"): FIGURES,
    ("GET", "/console/audit"): {"auditor", "admin"},
    ("GET", "/console/{rest:path}"): EVERYONE,
    ("POST", "/console/{rest:path}"): EVERYONE,
}


def served() -> set[tuple[str, str]]:
    """Every (method, template) the console serves."""
    found = set()
    for route in routes():
        inner = route.routes if isinstance(route, Mount) else [route]
        prefix = route.path if isinstance(route, Mount) else ""
        for r in inner:
            assert isinstance(r, Route)
            found |= {(m, prefix + r.path) for m in r.methods or () if m != "HEAD"}
    return found


def test_the_table_names_every_route_of_the_console() -> None:
    assert served() == set(TABLE) | PUBLIC


def concrete(template: str, case: int) -> str:
    return template.replace("{case:int}", str(case)).replace("{rest:path}", "no-such-page")


# A form each allowed role may send without changing anything that matters to the other checks.
FORMS: dict[str, dict[str, str]] = {
    "/console/held": {"decision": "release", "note": ""},
    "/console/invoices": {"channel": "demo-channel", "user": "nobody"},
    "/console/cases": {"kind": "question", "summary": ""},
    "/console/cases/{case:int}/notes": {"text": "checked with the channel"},
    "/console/cases/{case:int}/change": {"state": "waiting"},
}


@pytest.fixture(scope="module")
def a_case(stack: Any) -> int:
    assert add_staff(stack, "roles-admin", "admin").returncode == 0
    with Console(f"http://127.0.0.1:{stack.port}") as admin:
        assert admin.login("roles-admin").status_code == 303
        admin.get("/console/cases/new")
        resp = admin.post("/console/cases", {"kind": "question", "summary": "where is my prize", "due_days": "3"})
        assert resp.status_code == 303, resp.text
        return int(resp.headers["location"].rsplit("/", 1)[1])


@pytest.mark.parametrize("role", sorted(EVERYONE))
def test_each_role_is_refused_exactly_where_the_table_says(stack: Any, base_url: str, a_case: int, role: str) -> None:
    name = f"roles-{role}"
    assert add_staff(stack, name, role).returncode == 0
    wrong = []
    with Console(base_url) as console:
        assert console.login(name).status_code == 303
        # Logging out last: it ends the session.
        for method, template in sorted(TABLE, key=lambda mt: mt[1] == "/console/logout"):
            path = concrete(template, a_case)
            resp = console.get(path) if method == "GET" else console.post(path, FORMS.get(template, {}))
            refused = resp.status_code == 403
            if refused != (role not in TABLE[method, template]) or resp.status_code >= 500:
                wrong.append(f"{method} {path}: {resp.status_code}")
    assert wrong == []


def test_without_a_session_every_page_sends_to_the_login(base_url: str, a_case: int) -> None:
    with Console(base_url) as stranger:
        for method, template in sorted(TABLE):
            path = concrete(template, a_case)
            resp = stranger.http.request(method, path, data={"token": "x"} if method == "POST" else None)
            assert resp.status_code == 303, f"{method} {path}"
            assert resp.headers["location"].startswith("/console/login?next="), f"{method} {path}"
        assert stranger.http.get("/console/static/console.css").status_code == 200
        assert stranger.http.get("/console/login").status_code == 200


def test_support_cannot_release_even_with_a_valid_form(
    stack: Any, base_url: str, channel: SignedClient, drain: Any, sql: Any
) -> None:
    key = held_invoice(channel, drain, random.Random())
    assert add_staff(stack, "roles-support-2", "support").returncode == 0
    with Console(base_url) as support:
        support.login("roles-support-2")
        assert support.get("/console/held").status_code == 403
        resp = support.post("/console/held", {"key": key, "decision": "release", "note": "looks fine"})
    assert resp.status_code == 403
    assert sql("SELECT status FROM invoices WHERE key = $1", key)[0]["status"] == "held"
