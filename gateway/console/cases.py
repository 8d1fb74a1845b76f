"""The complaint ledger (投诉台账, 建立处置台账并跟踪闭环): a case opened on an invoice or on a consumer's question,
with an assignee, a state (open, waiting for the consumer or a channel, closed) and a due time; its timeline of
notes and changes is append-only, like the audit log. The open cases are listed oldest first, the overdue ones
marked.

A consumer is named by channel and the hash of the channel's user id, never by the id, a name, an ID number or
a phone number: a summary or note that holds something like an ID or phone number is refused
(gateway/console/forms.py ``personal_data``).
"""

from __future__ import annotations

from typing import Any

import asyncpg
from starlette.responses import Response

from core.hashing import user_ref
from core.rollup import Conn
from gateway import audit, codes, metrics
from gateway.console import forms
from gateway.console.lookup import KEY
from gateway.console.page import Visit, page, redirect
from gateway.errors import Problem

STATES = ("open", "waiting", "closed")
SHOWN = 200
MAX_SUMMARY, MAX_NOTE = 200, 2000
LISTS = {
    "active": ("state <> 'closed'", "opened_at, id"),
    "open": ("state = 'open'", "opened_at, id"),
    "waiting": ("state = 'waiting'", "opened_at, id"),
    "closed": ("state = 'closed'", "closed_at DESC, id DESC"),
    "all": ("true", "id DESC"),
}
LIST = """
SELECT id, kind, invoice_key, channel, summary, state, assignee, due_at, opened_by, opened_at, closed_at,
       due_at < now() AND state <> 'closed' AS overdue
FROM cases WHERE {where} AND ($1::text IS NULL OR assignee = $1) ORDER BY {order} LIMIT $2
"""
OPEN = """
INSERT INTO cases (kind, invoice_key, channel, user_ref, summary, assignee, due_at, opened_by)
VALUES ($1, $2, $3, $4, $5, $6, now() + make_interval(days => $7), $8) RETURNING id
"""
NOTE = "INSERT INTO case_notes (case_id, author, kind, text) VALUES ($1, $2, $3, $4)"


class Invalid(Exception):
    """A field of a case's form that cannot be kept: its message key (gateway/console/i18n.py)."""


@page("cases")
async def listing(visit: Visit) -> Response:
    """The cases: ``?state=`` active (default: open and waiting, oldest first), open, waiting, closed, all;
    ``?mine=1`` only those assigned to me."""
    params = visit.request.query_params
    state = params.get("state", "active") if params.get("state") in LISTS else "active"
    mine = visit.staff.name if params.get("mine") == "1" else None
    where, order = LISTS[state]
    rows = await visit.deps.pool.fetch(LIST.format(where=where, order=order), mine, SHOWN)
    return visit.render("cases.html", cases=rows, state=state, states=list(LISTS), mine=bool(mine))


@page("cases.change")
async def new(visit: Visit) -> Response:
    """The form of a new case (``?key=``: on that invoice)."""
    return await _new_form(visit, {"key": visit.request.query_params.get("key", "")})


async def _new_form(visit: Visit, values: dict[str, str], message: str = "", status: int = 200) -> Response:
    staff = await _staff(visit.deps.pool)
    channels = sorted(c.client_id for c in visit.deps.clients.all() if c.role == "channel")
    return visit.render(
        "case_new.html", values=values, staff_names=staff, channels=channels, message=message, status=status
    )


@page("cases.change")
async def open_case(visit: Visit) -> Response:
    """Open a case: ``kind`` (invoice, question), ``key``, ``channel`` and ``user`` (hashed), ``summary``,
    ``assignee``, ``due_days``, a first ``note``."""
    form = visit.form
    values = {k: form.get(k) for k in ("kind", "key", "channel", "summary", "assignee", "due_days", "note")}
    try:
        fields = await _new_case(visit, form)
        note = _text(form, "note", MAX_NOTE, required=False)
    except Invalid as exc:
        return await _new_form(visit, values, visit.words(str(exc)), 400)
    async with visit.deps.pool.acquire() as conn, conn.transaction():
        case = await conn.fetchval(OPEN, *fields)
        if note:
            await conn.execute(NOTE, case, visit.staff.name, "note", note)
        subject = f"case {case}"
        await audit.record(conn, visit.actor, "case_open", subject, {"kind": fields[0], "invoice": fields[1]})
    metrics.CONSOLE_ACTIONS.labels("case_open").inc()
    return redirect(f"/console/cases/{case}")


async def _new_case(visit: Visit, form: forms.Form) -> tuple[Any, ...]:
    kind = "invoice" if form.get("kind") == "invoice" else "question"
    key = form.get("key").strip() or None
    if (kind == "invoice" or key) and not (key and KEY.fullmatch(key)):
        raise Invalid("lookup.not_found")
    channel, user = form.get("channel") or None, form.get("user").strip()
    ref = None
    if user and channel:
        ref = user_ref(visit.deps.settings.secrets.person_secret, channel, user[:200])
    summary = _text(form, "summary", MAX_SUMMARY)
    assignee = await _assignee(visit.deps.pool, form.get("assignee"))
    days = _due_days(form.get("due_days", "3"))
    return kind, key, channel, ref, summary, assignee, days, visit.staff.name


@page("cases")
async def show(visit: Visit) -> Response:
    """One case: its facts, its timeline, and the forms to add a note or change it."""
    case_id = visit.request.path_params["case"]
    async with visit.deps.pool.acquire() as conn:
        case = await conn.fetchrow(
            "SELECT *, due_at < now() AND state <> 'closed' AS overdue FROM cases WHERE id = $1", case_id
        )
        if case is None:
            raise Problem(codes.NOT_FOUND, "no such case")
        notes = await conn.fetch(
            "SELECT author, at, kind, text FROM case_notes WHERE case_id = $1 ORDER BY id", case_id
        )
    staff = await _staff(visit.deps.pool)
    error = visit.request.query_params.get("error", "")
    message = visit.words(error) if error in ("cases.no_text", "cases.personal_data") else ""
    return visit.render("case.html", case=case, notes=notes, staff_names=staff, states=STATES, message=message)


@page("cases.change")
async def add_note(visit: Visit) -> Response:
    """A note on a case (``text``)."""
    case_id = visit.request.path_params["case"]
    try:
        text = _text(visit.form, "text", MAX_NOTE)
    except Invalid as exc:
        return redirect(f"/console/cases/{case_id}?error={exc}")
    async with visit.deps.pool.acquire() as conn, conn.transaction():
        await _exists(conn, case_id)
        await conn.execute(NOTE, case_id, visit.staff.name, "note", text)
        await conn.execute("UPDATE cases SET updated_at = now() WHERE id = $1", case_id)
        await audit.record(conn, visit.actor, "case_note", f"case {case_id}")
    metrics.CONSOLE_ACTIONS.labels("case_note").inc()
    return redirect(f"/console/cases/{case_id}")


CHANGE = """
UPDATE cases SET state = $2, assignee = $3,
    due_at = CASE WHEN $4::int IS NULL THEN due_at ELSE now() + make_interval(days => $4) END,
    closed_at = CASE WHEN $2 = 'closed' THEN coalesce(closed_at, now()) END, updated_at = now()
WHERE id = $1
"""


@page("cases.change")
async def change(visit: Visit) -> Response:
    """Change a case's ``state``, ``assignee`` or due time (``due_days`` from now; empty keeps it), with an
    optional ``note``; the timeline and the audit log say what changed."""
    case_id, form = visit.request.path_params["case"], visit.form
    try:
        note = _text(form, "note", MAX_NOTE, required=False)
        days = _due_days(form.get("due_days")) if form.get("due_days") else None
    except Invalid as exc:
        return redirect(f"/console/cases/{case_id}?error={exc}")
    state = form.get("state") if form.get("state") in STATES else None
    async with visit.deps.pool.acquire() as conn, conn.transaction():
        case = await _exists(conn, case_id, lock=True)
        assignee = await _assignee(conn, form.get("assignee"))
        changed = _changes(case, state or case["state"], assignee, days)
        if changed:
            await conn.execute(CHANGE, case_id, state or case["state"], assignee, days)
            await conn.execute(
                NOTE, case_id, visit.staff.name, "change", "; ".join(f"{k}: {v}" for k, v in changed.items())
            )
            await audit.record(conn, visit.actor, "case_change", f"case {case_id}", changed)
        if note:
            await conn.execute(NOTE, case_id, visit.staff.name, "note", note)
    if changed:
        metrics.CONSOLE_ACTIONS.labels("case_change").inc()
    return redirect(f"/console/cases/{case_id}")


def _changes(case: asyncpg.Record, state: str, assignee: str | None, days: int | None) -> dict[str, str]:
    found = {}
    if state != case["state"]:
        found["state"] = f"{case['state']} → {state}"
    if assignee != case["assignee"]:
        found["assignee"] = f"{case['assignee'] or '-'} → {assignee or '-'}"
    if days is not None:
        found["due"] = f"+{days} d"
    return found


def _text(form: forms.Form, name: str, limit: int, required: bool = True) -> str:
    text = form.get(name).strip()
    if (required and not text) or len(text) > limit:
        raise Invalid("cases.no_text")
    if forms.personal_data(text):
        raise Invalid("cases.personal_data")
    return text


def _due_days(raw: str) -> int:
    try:
        days = int(raw)
    except ValueError:
        days = 0
    if not 1 <= days <= 90:
        raise Problem(codes.BAD_PARAMETER, "due_days: 1 to 90")
    return days


async def _assignee(conn: Conn | asyncpg.Pool, name: str) -> str | None:
    if not name:
        return None
    found = await conn.fetchval("SELECT name FROM staff WHERE name = $1 AND disabled_at IS NULL", name)
    if found is None:
        raise Problem(codes.BAD_PARAMETER, "assignee: a member of staff")
    return str(found)


async def _exists(conn: Conn, case_id: int, lock: bool = False) -> asyncpg.Record:
    case = await conn.fetchrow(f"SELECT * FROM cases WHERE id = $1{' FOR UPDATE' if lock else ''}", case_id)
    if case is None:
        raise Problem(codes.NOT_FOUND, "no such case")
    return case


async def _staff(pool: asyncpg.Pool) -> list[str]:
    return [r["name"] for r in await pool.fetch("SELECT name FROM staff WHERE disabled_at IS NULL ORDER BY name")]
