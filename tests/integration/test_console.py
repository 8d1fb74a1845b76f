"""The console on the real stack, as a browser uses it but without one (tests/e2e/test_console_browser.py drives
Chromium through the scenario): sessions, tokens, lockout and its end, the audit log that nothing can rewrite,
the held queue deciding as the admin API does, the lookup, the cases, the reports and the channels' figures."""

from __future__ import annotations

import asyncio
import csv
import io
import random
import re
from typing import Any

import asyncpg
import openpyxl
import pytest

from core import campaign as campaigns
from core.rollup import Rollup
from core.settings import Settings
from gateway.console.session import SESSION_COOKIE
from loadtest import sample
from loadtest.client import SignedClient
from tests.conftest import signed
from tests.console import PASSWORD, Console, add_staff, figures, held_invoice
from tests.integration.test_reports import days_now


@pytest.fixture(scope="module")
def staff(stack: Any) -> dict[str, str]:
    """One member of staff per role, made with ``gateway add-staff``."""
    names = {role: f"it-{role}" for role in ("reviewer", "support", "analyst", "auditor", "admin")}
    for role, name in names.items():
        done = add_staff(stack, name, role)
        assert done.returncode == 0, done.stderr
        assert PASSWORD not in done.stdout + done.stderr
    return names


@pytest.fixture
def auditor(base_url: str) -> Any:
    yield from signed(base_url, "demo-auditor")


def test_add_staff_reads_the_password_from_standard_input_and_refuses_a_short_one(stack: Any, sql: Any) -> None:
    done = add_staff(stack, "it-short", "analyst", password="short")
    assert done.returncode == 1 and "12 to 1024" in done.stderr
    assert sql("SELECT 1 FROM staff WHERE name = 'it-short'") == []
    done = add_staff(stack, "it-someone", "analyst")
    stored = sql("SELECT password_hash FROM staff WHERE name = 'it-someone'")[0]["password_hash"]
    assert done.returncode == 0 and stored.startswith("$argon2id$") and PASSWORD not in stored


def test_login_sets_a_signed_httponly_strict_cookie_and_logout_ends_the_session(
    base_url: str, staff: dict[str, str], sql: Any
) -> None:
    with Console(base_url) as console:
        resp = console.login(staff["analyst"])
        assert resp.status_code == 303 and resp.headers["location"] == "/console/today"
        cookie = resp.headers["set-cookie"]
        assert f"{SESSION_COOKIE}=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
        assert "Path=/console" in cookie and "Secure" not in cookie  # plain HTTP here: Secure over TLS only
        value = console.http.cookies[SESSION_COOKIE]
        assert sql("SELECT 1 FROM staff_sessions WHERE id LIKE $1", value.split(".")[0][:8] + "%") == []  # hashed
        assert console.get("/console/today").status_code == 200
        assert console.post("/console/logout", {}).status_code == 303
        assert SESSION_COOKIE not in console.http.cookies
        console.http.cookies.set(SESSION_COOKIE, value, path="/console")  # the old cookie, kept by someone
        after = console.get("/console/today")
        assert after.status_code == 303 and "ended=1" in after.headers["location"]
    actions = [r["action"] for r in sql("SELECT action FROM audit_log WHERE actor = $1 ORDER BY id", staff["analyst"])]
    assert actions[-2:] == ["login", "logout"]


def test_a_forged_or_foreign_token_is_refused_with_403(base_url: str, staff: dict[str, str]) -> None:
    with Console(base_url) as one, Console(base_url) as other:
        one.login(staff["support"])
        other.login(staff["admin"])
        form = {"kind": "question", "summary": "a question", "due_days": "3"}
        assert one.post("/console/cases", form, token=False).status_code == 403
        assert one.post("/console/cases", {**form, "token": other.token}, token=False).status_code == 403
        forged = one.http.cookies[SESSION_COOKIE].split(".")[0] + "." + "0" * 64
        one.http.cookies.set(SESSION_COOKIE, forged, path="/console")
        assert one.get("/console/today").status_code == 303
    with Console(base_url) as stranger:
        stranger.get("/console/login")
        login = {"name": staff["support"], "password": PASSWORD}
        assert stranger.http.post("/console/login", data=login).status_code == 403


def test_api_clients_cannot_log_in_and_a_session_opens_no_api(base_url: str, staff: dict[str, str]) -> None:
    with Console(base_url) as console:
        resp = console.login("demo-admin", "demo-admin-secret")
        assert resp.status_code == 401 and SESSION_COOKIE not in console.http.cookies
        console.login(staff["admin"])
        cookies = {SESSION_COOKIE: console.http.cookies[SESSION_COOKIE]}
        api = console.http.get("/v1/admin/held", headers={"Cookie": f"{SESSION_COOKIE}={cookies[SESSION_COOKIE]}"})
        assert api.status_code == 401 and api.json()["code"] == "missing_auth_header"


def test_an_idle_session_ends_and_a_lock_ends_by_itself(
    stack: Any, base_url: str, staff: dict[str, str], sql: Any
) -> None:
    with Console(base_url) as console:
        console.login(staff["auditor"])
        sql("UPDATE staff_sessions SET last_seen = now() - interval '31 minutes' WHERE staff = $1", staff["auditor"])
        resp = console.get("/console/audit")
        assert resp.status_code == 303 and "ended=1" in resp.headers["location"]
        assert "会话已结束" in console.get(resp.headers["location"]).text
    assert add_staff(stack, "it-locked", "analyst").returncode == 0
    sql("UPDATE staff SET locked_until = now() + interval '1 hour' WHERE name = 'it-locked'")
    with Console(base_url) as console:
        assert console.login("it-locked").status_code == 423
        sql("UPDATE staff SET locked_until = now() - interval '1 second' WHERE name = 'it-locked'")
        assert console.login("it-locked").status_code == 303


def test_the_audit_log_and_the_case_timelines_refuse_any_rewrite(settings: Settings, base_url: str) -> None:
    async def attempts() -> list[str]:
        conn = await asyncpg.connect(settings.stores.database_url)
        refused = []
        try:
            case = await conn.fetchval(
                "INSERT INTO cases (kind, summary, due_at, opened_by) VALUES ('question', 'q', now(), 'x') RETURNING id"
            )
            await conn.execute(
                "INSERT INTO case_notes (case_id, author, kind, text) VALUES ($1, 'x', 'note', 'n')", case
            )
            await conn.execute(
                "INSERT INTO audit_log (actor, role, via, source, action) VALUES ('x', '', 'cli', '', 'login')"
            )
            for statement in (
                "UPDATE audit_log SET actor = 'nobody'",
                "DELETE FROM audit_log",
                "TRUNCATE audit_log",
                "UPDATE case_notes SET text = ''",
                "DELETE FROM case_notes",
                "TRUNCATE case_notes CASCADE",
            ):
                try:
                    await conn.execute(statement)
                except asyncpg.RaiseError as exc:
                    refused.append(str(exc))
        finally:
            await conn.close()
        return refused

    refused = asyncio.run(attempts())
    assert len(refused) == 6 and all("append-only" in r for r in refused)


def test_today_shows_the_daily_reports_figures(
    settings: Settings,
    base_url: str,
    staff: dict[str, str],
    channel: SignedClient,
    auditor: SignedClient,
    drain: Any,
    sql: Any,
) -> None:
    rng = random.Random()
    invoices = [sample.invoice(rng) for _ in range(3)] + [inv for _, inv in sample.broken_invoices(rng)[:2]]
    assert channel.upload(invoices).status_code == 202
    drain()
    _, today = days_now(settings)
    with Console(base_url) as console:
        console.login(staff["analyst"])
        page = console.get("/console/today").text
    api = auditor.request("GET", f"/v1/reports/daily?date={today}").json()["days"][0]
    shown = figures(page)
    assert len(shown) >= 16
    assert shown == {name: api[name] for name in shown}
    start, end = Rollup.of(campaigns.load(settings.campaign_file)).window(today)
    hourly = sql(
        "SELECT coalesce(sum(count), 0) AS n FROM report_hourly WHERE metric = 'received' AND hour >= $1 AND hour < $2",
        start,
        end,
    )[0]["n"]
    assert hourly == api["received"]  # the hours of the day (Asia/Shanghai) add up to the day


def test_releasing_in_the_console_decides_as_the_admin_api_does(
    base_url: str, staff: dict[str, str], channel: SignedClient, drain: Any, sql: Any
) -> None:
    rng = random.Random()
    release, reject, taken = (held_invoice(channel, drain, rng) for _ in range(3))
    sql("UPDATE invoices SET status = 'eligible' WHERE key = $1", taken)  # someone decided it meanwhile
    with Console(base_url) as console:
        console.login(staff["reviewer"])
        assert release in console.get("/console/held").text
        note = "traveller; receipt checked"
        done = console.post("/console/held", {"key": [release, taken], "decision": "release", "note": note})
        assert done.status_code == 303 and "released=1" in done.headers["location"]
        assert "skipped=1" in done.headers["location"]
        assert console.post("/console/held", {"key": reject, "decision": "reject", "note": "no"}).status_code == 303
        empty_note = console.post("/console/held", {"key": reject, "decision": "reject", "note": "  "})
        assert "error=invalid_note" in empty_note.headers["location"]
    drain()
    assert sql("SELECT status FROM invoices WHERE key = $1", release)[0]["status"] == "eligible"
    assert sql("SELECT status, reason FROM invoices WHERE key = $1", reject)[0]["reason"] == "rejected_in_review"
    review = sql("SELECT reviewer, note FROM reviews WHERE key = $1", release)[0]
    assert (review["reviewer"], review["note"]) == (staff["reviewer"], note)
    events = [r["reason"] for r in sql("SELECT reason FROM invoice_events WHERE key = $1 ORDER BY id", release)]
    assert "released_in_review" in events
    rows = sql("SELECT actor, role, via, action, detail FROM audit_log WHERE subject = $1", release)
    assert [(r["actor"], r["role"], r["via"], r["action"]) for r in rows] == [
        (staff["reviewer"], "reviewer", "console", "release")
    ]


def test_the_admin_apis_decisions_are_in_the_audit_log_too(
    base_url: str, channel: SignedClient, drain: Any, sql: Any
) -> None:
    key = held_invoice(channel, drain)
    with SignedClient(base_url, "demo-admin", "demo-admin-secret") as admin:
        body = b'{"decision": "release", "note": "checked by phone"}'
        assert (
            admin.request("POST", f"/v1/admin/held/{key}", body, {"Content-Type": "application/json"}).status_code
            == 200
        )
    row = sql("SELECT actor, via, action, detail FROM audit_log WHERE subject = $1", key)[0]
    assert (row["actor"], row["via"], row["action"]) == ("demo-admin", "api", "release")


def test_lookup_by_key_and_by_the_channels_user_shows_no_personal_data(
    base_url: str, staff: dict[str, str], channel: SignedClient, drain: Any, sql: Any
) -> None:
    rng = random.Random()
    id_number = sample.id_number(rng)
    user = {"id": f"lookup-{rng.randrange(10**9)}", "device_id": "d1", "real_name": "张三", "id_number": id_number}
    invoice = sample.invoice(rng, user=user)
    key = channel.upload([invoice]).json()["results"][0]["key"]
    drain()
    with Console(base_url) as console:
        console.login(staff["support"])
        page = console.get("/console/invoices", key=key).text
        assert 'data-status="eligible"' in page and 'data-kind="add"' in page
        listed = console.post("/console/invoices", {"channel": "demo-channel", "user": user["id"]}).text
        assert f"/console/invoices?key={key}" in listed
    person = sql("SELECT person, user_ref, device_ref FROM invoices WHERE key = $1", key)[0]
    for text in (page, listed):
        assert "张三" not in text and id_number not in text and user["id"] not in text
        assert not any(value in text for value in person.values())
    audit = sql("SELECT subject, detail FROM audit_log WHERE action = 'lookup' AND actor = $1", staff["support"])
    assert {r["subject"] for r in audit} >= {key, "user of demo-channel"}
    assert all(user["id"] not in r["detail"] for r in audit)


def test_a_case_is_opened_noted_closed_and_keeps_no_id_or_phone_number(
    base_url: str, staff: dict[str, str], channel: SignedClient, drain: Any, sql: Any
) -> None:
    key = channel.upload([sample.invoice(random.Random())]).json()["results"][0]["key"]
    with Console(base_url) as console:
        console.login(staff["support"])
        console.get("/console/cases/new", key=key)
        form = {"kind": "invoice", "key": key, "summary": "consumer asks where it is", "due_days": "2"}
        refused = console.post("/console/cases", {**form, "note": "ID 11010519491231002X"})
        assert refused.status_code == 400 and "疑似身份证号" in refused.text
        opened = console.post("/console/cases", {**form, "assignee": staff["support"], "note": "called"})
        assert opened.status_code == 303
        case = opened.headers["location"]
        console.get(case)
        assert (
            "error=cases.personal_data"
            in console.post(f"{case}/notes", {"text": "call 13912345678"}).headers["location"]
        )
        console.post(f"{case}/notes", {"text": "channel confirms the upload"})
        console.post(f"{case}/change", {"state": "waiting", "assignee": staff["support"]})
        console.post(f"{case}/change", {"state": "closed", "assignee": staff["support"], "note": "answered"})
        listing = console.get("/console/cases", state="closed").text
    case_id = int(case.rsplit("/", 1)[1])
    assert f'data-case="{case_id}"' in listing
    row = sql("SELECT state, closed_at, invoice_key FROM cases WHERE id = $1", case_id)[0]
    assert row["state"] == "closed" and row["closed_at"] is not None and row["invoice_key"] == key
    notes = [
        (r["kind"], r["text"]) for r in sql("SELECT kind, text FROM case_notes WHERE case_id = $1 ORDER BY id", case_id)
    ]
    assert notes[0] == ("note", "called") and ("note", "channel confirms the upload") in notes
    assert ("change", "state: open → waiting") in notes and ("change", "state: waiting → closed") in notes
    assert not any("13912345678" in text or "1101051949" in text for _, text in notes)
    actions = [
        r["action"] for r in sql("SELECT action FROM audit_log WHERE subject = $1 ORDER BY id", f"case {case_id}")
    ]
    assert actions == ["case_open", "case_note", "case_change", "case_change"]


def test_reports_download_the_apis_csv_and_the_same_rows_as_xlsx(
    settings: Settings, base_url: str, staff: dict[str, str], auditor: SignedClient, sql: Any
) -> None:
    first, last = days_now(settings)
    query = {"from": str(first), "to": str(last)}
    with Console(base_url) as console:
        console.login(staff["analyst"])
        assert console.get("/console/reports", **query).status_code == 200
        csv_text = console.get("/console/reports/daily.csv", **query)
        xlsx = console.get("/console/reports/daily.xlsx", **query)
    api = auditor.request("GET", f"/v1/reports/daily?from={first}&to={last}", headers={"Accept": "text/csv"})
    assert csv_text.status_code == 200 and csv_text.text == api.text
    assert "attachment" in xlsx.headers["content-disposition"]
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx.content))["daily"]
    cells = [["" if v is None else str(v) for v in row] for row in sheet.iter_rows(values_only=True)]
    assert cells == list(csv.reader(io.StringIO(api.text)))
    assert isinstance(sheet.cell(2, 4).value, int)  # counts are numbers a spreadsheet sums, not text
    assert len(sql("SELECT 1 FROM audit_log WHERE action = 'export' AND actor = $1", staff["analyst"])) == 2


def test_the_channels_page_counts_from_the_hourly_rollup(
    base_url: str, staff: dict[str, str], channel2: SignedClient, drain: Any
) -> None:
    def row(console: Console) -> dict[str, int]:
        page = console.get("/console/channels", hours="1").text
        found = re.search(r'<tr data-channel="demo-channel-2">(.*?)</tr>', page, re.S)
        assert found is not None
        return {k: int(v.replace(",", "")) for k, v in re.findall(r'data-figure="(\w+)">([0-9,]+)<', found[1])}

    rng = random.Random()
    with Console(base_url) as console:
        console.login(staff["analyst"])
        before = row(console)
        invoices = [sample.invoice(rng) for _ in range(4)] + [inv for _, inv in sample.broken_invoices(rng)[:3]]
        assert channel2.upload(invoices).status_code == 202
        drain()
        after = row(console)
    assert after["received"] - before["received"] == 7
    assert after["accepted"] - before["accepted"] == 4
    assert after["rejected"] - before["rejected"] == 3


def test_console_requests_are_counted_by_route_template(base_url: str, staff: dict[str, str]) -> None:
    with Console(base_url) as console:
        console.login(staff["admin"])
        console.get("/console/cases/987654321")
        metrics = console.http.get("/metrics").text
    assert 'route="/console/cases/{case:int}"' in metrics
    assert "/console/cases/987654321" not in metrics
    assert re.search(r'gateway_console_logins_total\{outcome="ok"\} [1-9]', metrics)
