"""Logging in and out of the console (gateway/console/staff.py checks the password, session.py keeps the session)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from core.errors import STORE_ERRORS
from core.settings import Console
from gateway import audit, metrics
from gateway.console import forms, i18n, session, staff
from gateway.console.page import Visit, error, not_found, page, redirect, render, secured
from gateway.deps import deps
from gateway.errors import Problem

HOME = "/console/today"
STATUS = {"locked": 423}  # any other failure is 401, with one message: a name is not told from a password


def safe_next(raw: str | None) -> str:
    """Where to go after logging in: a console page of this gateway, never another site."""
    if raw and raw.startswith("/console/") and "//" not in raw and "\\" not in raw:
        return raw
    return HOME


Public = Callable[[Request, i18n.Words, Console], Awaitable[Response]]


def public(handler: Public) -> Callable[[Request], Awaitable[Response]]:
    """A page without a session (the login form and its post): the words of the page's language and the
    console's settings; 404 while the console is off."""

    async def endpoint(request: Request) -> Response:
        words = i18n.words_of(request)
        rules = deps(request).settings.console
        if not rules.secret:
            return not_found(request, words)
        return await handler(request, words, rules)

    endpoint.__doc__ = handler.__doc__
    return endpoint


@public
async def login_page(request: Request, words: i18n.Words, rules: Console) -> Response:
    """The login form, with a token bound to a cookie of its own (there is no session yet)."""
    value = request.cookies.get(session.LOGIN_COOKIE) or session.new_login_value()
    ended = "ended" in request.query_params
    response = _form(request, words, value, message=words("login.ended") if ended else "")
    session.set_cookie(response, request, session.LOGIN_COOKIE, value)
    return response


def _form(request: Request, words: i18n.Words, value: str, message: str = "", status: int = 200) -> Response:
    secret = deps(request).settings.console.secret
    next_page = safe_next(request.query_params.get("next"))
    token = session.form_token(secret, value)
    return render(request, words, "login.html", status, token=token, next=next_page, message=message)


@public
async def login(request: Request, words: i18n.Words, rules: Console) -> Response:
    """Check the name and password; a session and its cookie, or the form again with why not."""
    pool = deps(request).pool
    value = request.cookies.get(session.LOGIN_COOKIE, "")
    try:
        form = await forms.read(request)
    except Problem as exc:
        return error(request, words, exc.code.status, words.problem(exc.code.name, exc.detail))
    if not session.token_ok(rules.secret, value, form.get("token")):
        return error(request, words, 403, words("error.csrf"))
    try:
        result = await staff.log_in(
            pool, form.get("name").strip().lower(), form.get("password"), rules, audit.source_of(request)
        )
        # counted here, not in staff.py: the gateway CLI imports staff, and must not touch the metrics folder
        metrics.CONSOLE_LOGINS.labels(result.outcome).inc()
        if result.staff is None:
            message = words(f"login.{'locked' if result.outcome == 'locked' else 'wrong'}")
            return _form(request, words, value, message, STATUS.get(result.outcome, 401))
        sid = await session.start(pool, result.staff.name, audit.source_of(request), rules.idle_s)
    except STORE_ERRORS:
        return error(request, words, 503, words("error.store"))
    response = redirect(safe_next(form.get("next")))
    session.set_cookie(response, request, session.SESSION_COOKIE, session.cookie_value(rules.secret, sid))
    return response


@page("session")
async def logout(visit: Visit) -> Response:
    """End the session; the audit log says so."""
    async with visit.deps.pool.acquire() as conn, conn.transaction():
        await session.end(conn, visit.session_id)
        await audit.record(conn, visit.actor, "logout", visit.staff.name)
    response = secured(redirect("/console/login"))
    response.delete_cookie(session.SESSION_COOKIE, path=session.PATH)
    return response
