"""The console in a real browser: Debian's Chromium, headless, driven by Playwright (its Python package only: no
browser is downloaded, ``executable_path`` names the system's), against the session's stack.

The issue's scenario: a reviewer logs in, sees a held invoice, releases it with a note and finds it in the feed
and in its history; support looks it up, opens a case on it and closes it, and cannot release; an analyst reads
Today (the daily report's figures) and downloads the report as CSV and XLSX; an auditor finds all of it in the
audit log. A wrong password locks the account after the limit; a form without its token gets 403. Every page is
also drawn at a tablet's width. Each page's screenshot is kept in ``.data/test/screenshots/`` for a person to
look at, and every request the browser made went to the gateway itself (no CDN), every asset a page names
answered 200, and no page logged an error (a blocked inline script or style would).
"""

from __future__ import annotations

import concurrent.futures
import csv
import io
import random
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import openpyxl
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from loadtest.client import SignedClient
from tests.console import PASSWORD, add_staff, held_invoice

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LAPTOP = {"width": 1366, "height": 900}
TABLET = {"width": 768, "height": 1024}
T = TypeVar("T")


def aside(work: Callable[[], T]) -> T:
    """Run ``work`` in a thread of its own: the drain and the SQL helper run an asyncio loop, which cannot start
    in the thread Playwright's synchronous API drives."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(work).result()


class Tab:
    """A page of one member of staff, with what it requested and what it logged."""

    def __init__(self, context: BrowserContext, base_url: str, shots: Path) -> None:
        self.page: Page = context.new_page()
        self.base_url, self.shots = base_url, shots
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def go(self, path: str) -> Page:
        self.page.goto(self.base_url + path)
        return self.page

    def shot(self, name: str) -> None:
        self.page.screenshot(path=str(self.shots / f"{name}.png"), full_page=True)
        (self.shots / f"{name}.html").write_text(self.page.content())

    def login(self, name: str, password: str = PASSWORD) -> None:
        self.go("/console/login")
        self.page.fill("input[name=name]", name)
        self.page.fill("input[name=password]", password)
        self.page.click("button[type=submit]")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        found = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield found
        found.close()


@pytest.fixture(scope="module")
def shots(stack: Any) -> Path:
    folder = Path(stack.data) / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def team(stack: Any) -> dict[str, str]:
    names = {role: f"web-{role}" for role in ("reviewer", "support", "analyst", "auditor")}
    for role, name in names.items():
        assert add_staff(stack, name, role).returncode == 0
    return names


def assets_of(page: Page) -> list[str]:
    """Every stylesheet, script, icon and image a page names."""
    found: list[str] = page.eval_on_selector_all(
        "link[href], script[src], img[src]", "els => els.map(e => e.href || e.src)"
    )
    return found


def check_origin(tab: Tab) -> None:
    """Every request went to the gateway, every asset answers 200, and nothing was logged as an error."""
    outside = [u for u in tab.requests if not u.startswith(tab.base_url)]
    assert outside == [], outside
    for url in set(assets_of(tab.page)):
        assert url.startswith(tab.base_url), url
        assert httpx.get(url).status_code == 200, url
    assert tab.errors == []


def in_feed(draw: SignedClient, key: str) -> int | None:
    """The seq of the batch holding ``key``'s add entry, reading the whole feed."""
    after = 0
    while batches := draw.feed(after=after, limit=100).json()["batches"]:
        for batch in batches:
            if any(e["key"] == key and e["kind"] == "add" for e in batch["entries"]):
                return int(batch["seq"])
        after = batches[-1]["seq"]
    return None


def test_the_issues_scenario_in_chromium(
    browser: Browser,
    base_url: str,
    shots: Path,
    team: dict[str, str],
    channel: SignedClient,
    draw: SignedClient,
    drain: Any,
    sql: Any,
) -> None:
    key = aside(lambda: held_invoice(channel, drain, random.Random()))
    laptop = browser.new_context(viewport=LAPTOP, accept_downloads=True)

    # A reviewer sees the held invoice and releases it; it joins the feed, its history says so.
    reviewer = Tab(laptop, base_url, shots)
    reviewer.go("/console")
    reviewer.shot("01-login")
    reviewer.login(team["reviewer"])
    reviewer.page.wait_for_url("**/console/today")
    reviewer.go("/console/held")
    row = reviewer.page.locator(f'tr[data-key="{key}"]')
    assert row.count() == 1 and "上传位置远离活动城市" in row.inner_text()
    row.locator("input[name=key]").check()
    reviewer.page.fill("textarea[name=note]", "消费者出差，票据核实无误")
    reviewer.shot("02-held-queue")
    reviewer.page.click("button[value=release]")
    reviewer.page.wait_for_url("**/console/held?**released=1**")
    reviewer.shot("03-held-released")
    aside(drain)
    seq = in_feed(draw, key)
    assert seq is not None
    page = reviewer.go(f"/console/invoices?key={key}")
    assert page.locator(f'#invoice [data-kind="add"][data-batch="{seq}"]').count() == 1
    assert page.locator('table.history tr[data-status="verified"]').count() == 2  # before the hold, and released
    assert "审核放行" in page.locator("table.history").inner_text()
    reviewer.shot("04-invoice-lookup")
    check_origin(reviewer)

    # A form without its token is refused.
    reviewer.go("/console/held")
    reviewer.page.eval_on_selector("form[action='/console/logout'] input[name=token]", "e => e.remove()")
    reviewer.page.click("form[action='/console/logout'] button")
    assert reviewer.page.locator(".message[data-status='403']").count() == 1
    reviewer.shot("05-form-without-token-403")
    laptop.close()

    # Support finds the invoice, opens a case on it, notes and closes it; releasing is not theirs to do.
    support_context = browser.new_context(viewport=LAPTOP)
    support = Tab(support_context, base_url, shots)
    support.login(team["support"])
    support.page.wait_for_url("**/console/today")
    page = support.go(f"/console/invoices?key={key}")
    page.click(f'a[href="/console/cases/new?key={key}"]')
    page.fill("input[name=summary]", "消费者询问发票是否已进入抽奖池")
    page.fill("textarea[name=note]", "已告知已放行，等待开奖")
    support.shot("06-case-new")
    page.click("button[type=submit].primary")
    page.wait_for_url(re.compile(r".*/console/cases/[0-9]+$"))
    page.fill("#note textarea[name=text]", "渠道确认已收到回执")
    page.click("#note button")
    page.select_option("#change select[name=state]", "closed")
    page.fill("#change textarea[name=note]", "已答复，结案")
    page.click("#change button")
    assert page.locator("h1 [data-state='closed']").count() == 1
    support.shot("07-case-closed")
    support.go("/console/cases?state=closed")
    assert support.page.locator("#cases tr[data-case]").count() >= 1
    support.shot("08-cases")
    check_origin(support)
    response = support.page.goto(base_url + "/console/held")
    assert response is not None and response.status == 403
    support.shot("09-support-may-not-review")
    support_context.close()

    # An analyst reads Today and downloads the report.
    analyst_context = browser.new_context(viewport=LAPTOP, accept_downloads=True)
    analyst = Tab(analyst_context, base_url, shots)
    analyst.login(team["analyst"])
    analyst.page.wait_for_url("**/console/today")
    assert analyst.page.locator("svg.chart").count() == 4
    analyst.shot("10-today")
    analyst.go("/console/channels")
    analyst.shot("11-channels")
    analyst.go("/console/reports")
    analyst.shot("12-reports")
    with analyst.page.expect_download() as csv_download:
        analyst.page.click("#csv")
    saved = shots / csv_download.value.suggested_filename
    csv_download.value.save_as(saved)
    rows = list(csv.reader(io.StringIO(saved.read_text())))
    with analyst.page.expect_download() as xlsx_download:
        analyst.page.click("#xlsx")
    assert xlsx_download.value.suggested_filename == saved.stem + ".xlsx"
    xlsx_download.value.save_as(saved.with_suffix(".xlsx"))
    book = openpyxl.load_workbook(saved.with_suffix(".xlsx"))
    cells = [["" if v is None else str(v) for v in r] for r in book["daily"].iter_rows(values_only=True)]
    assert rows[0][:3] == ["date", "channel", "industry"] and cells == rows
    check_origin(analyst)
    analyst_context.close()

    # The auditor finds each action in the audit log.
    auditor_context = browser.new_context(viewport=LAPTOP)
    auditor = Tab(auditor_context, base_url, shots)
    auditor.login(team["auditor"])
    page = auditor.go("/console/audit")
    for action, actor in (("release", "reviewer"), ("case_open", "support"), ("export", "analyst")):
        assert page.locator(f'tr[data-action="{action}"][data-actor="{team[actor]}"]').count() >= 1, action
    auditor.shot("13-audit-log")
    check_origin(auditor)
    auditor_context.close()


def test_a_wrong_password_locks_the_account_after_the_limit(
    browser: Browser, base_url: str, shots: Path, stack: Any, sql: Any
) -> None:
    assert add_staff(stack, "web-unlucky", "analyst").returncode == 0
    context = browser.new_context(viewport=LAPTOP)
    tab = Tab(context, base_url, shots)
    for _ in range(4):
        tab.login("web-unlucky", "not the password")
        assert "用户名或密码错误" in tab.page.locator(".message").inner_text()
    tab.login("web-unlucky", "not the password either")
    assert "锁定" in tab.page.locator(".message").inner_text()
    tab.login("web-unlucky")  # the right password, too late
    assert "锁定" in tab.page.locator(".message").inner_text()
    assert "/console/login" in tab.page.url
    tab.shot("14-locked-out")
    context.close()
    actions = aside(lambda: [r["action"] for r in sql("SELECT action FROM audit_log WHERE actor = 'web-unlucky'")])
    assert actions.count("lockout") == 1 and actions.count("login") == 0


def test_every_page_fits_a_tablet_and_speaks_english_when_asked(
    browser: Browser, base_url: str, shots: Path, stack: Any
) -> None:
    assert add_staff(stack, "web-admin", "admin").returncode == 0
    context = browser.new_context(viewport=TABLET)
    tab = Tab(context, base_url, shots)
    tab.login("web-admin")
    tab.page.wait_for_url("**/console/today")
    for n, path in enumerate(("today", "held", "invoices", "cases", "reports", "channels", "audit"), 15):
        page = tab.go(f"/console/{path}")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= TABLET["width"], f"{path} is {width} px wide"
        tab.shot(f"{n}-tablet-{path}")
    page = tab.go("/console/today?lang=en")
    assert page.locator("nav.pages").inner_text().split()[:2] == ["Today", "Held"]
    page = tab.go("/console/cases")  # the cookie remembers the language
    assert "Cases" in page.locator("h1").inner_text()
    tab.shot("22-english-cases")
    check_origin(tab)
    context.close()
