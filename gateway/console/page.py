"""What every console page goes through before its own code, in one place: a live session (else the login page),
the form's CSRF token on a POST (else 403), the role (else 403, gateway/console/roles.py); then the page, its
errors shown as a page in the staff's language, and the headers every console answer carries.

A page is ``@page("action")`` over ``async def handler(visit: Visit) -> Response``; ``visit.render`` draws a
template with what every template needs (the words, the staff, the form token, the navigation).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from core.errors import STORE_ERRORS, StoreUnavailable
from gateway import audit
from gateway.console import forms, i18n, roles, session
from gateway.console.session import Staff
from gateway.deps import Deps, deps
from gateway.errors import Problem

log = logging.getLogger(__name__)
STORE_FAILED: tuple[type[BaseException], ...] = (*STORE_ERRORS, StoreUnavailable)
LOGIN = "/console/login"
# Nothing but the gateway itself: no inline script or style, no frame, no other origin.
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; object-src 'none';"
        " frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True, slots=True)
class Visit:
    """One request to a page: who asks, in which language, with which form."""

    request: Request
    deps: Deps
    staff: Staff
    session_id: str
    words: i18n.Words
    form: forms.Form

    @property
    def actor(self) -> audit.Actor:
        return audit.Actor(self.staff.name, self.staff.role, "console", audit.source_of(self.request))

    def may(self, action: str) -> bool:
        return roles.may(self.staff.role, action)

    def render(self, template: str, status: int = 200, **context: Any) -> Response:
        secret = self.deps.settings.console.secret
        base = {
            "staff": self.staff,
            "token": session.form_token(secret, self.session_id),
            "may": self.may,
        }
        return render(self.request, self.words, template, status, **base, **context)


Handler = Callable[[Visit], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]


def page(action: str) -> Callable[[Handler], Endpoint]:
    """A console page behind a session and the role ``action`` needs (gateway/console/roles.py)."""

    def wrap(handler: Handler) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            return await serve(request, action, handler)

        endpoint.action = action  # type: ignore[attr-defined]  # read by the role table's test
        endpoint.__doc__ = handler.__doc__
        return endpoint

    return wrap


async def serve(request: Request, action: str, handler: Handler) -> Response:
    d = deps(request)
    words = i18n.words_of(request)
    if not d.settings.console.secret:
        return not_found(request, words)
    found = await _session(request, d)
    if found is None:
        return to_login(request)
    sid, staff = found
    form = forms.Form({})
    try:
        if request.method == "POST":
            form = await forms.read(request)
            if not session.token_ok(d.settings.console.secret, sid, form.get("token")):
                return error(request, words, 403, words("error.csrf"))
        visit = Visit(request, d, staff, sid, words, form)
        if not visit.may(action):
            return error(request, words, 403, words("error.role").format(role=words.role(staff.role)))
        return await handler(visit)
    except Problem as exc:
        return error(request, words, exc.code.status, words.problem(exc.code.name, exc.detail))
    except STORE_FAILED as exc:
        log.warning("console page %s: a store failed: %s", request.url.path, type(exc).__name__)
        return error(request, words, 503, words("error.store"))


async def _session(request: Request, d: Deps) -> tuple[str, Staff] | None:
    rules = d.settings.console
    sid = session.session_id(rules.secret, request.cookies.get(session.SESSION_COOKIE))
    if sid is None:
        return None
    try:
        staff = await session.resume(d.pool, sid, rules.idle_s, rules.session_max_s)
    except STORE_ERRORS as exc:
        raise StoreUnavailable("the console's sessions cannot be read now") from exc
    return None if staff is None else (sid, staff)


def to_login(request: Request) -> Response:
    """To the login page, and back here afterwards (a GET; a form posted after its session ended is lost)."""
    ended = "&ended=1" if session.SESSION_COOKIE in request.cookies else ""
    back = request.url.path if request.method == "GET" else "/console/today"
    return secured(RedirectResponse(f"{LOGIN}?next={quote(back)}{ended}", status_code=303))


def render(request: Request, words: i18n.Words, template: str, status: int = 200, **context: Any) -> Response:
    """A template as a page; a language asked for with ``?lang=`` is remembered from now on."""
    env: jinja2.Environment = request.app.state.console_templates
    switch = str(request.url.include_query_params(lang=words.other).replace(scheme="", netloc=""))
    html = env.get_template(template).render(t=words, path=request.url.path, nav=roles.NAV, switch=switch, **context)
    response = secured(HTMLResponse(html, status_code=status))
    if request.query_params.get("lang") == words.lang:
        session.set_cookie(response, request, i18n.COOKIE, words.lang, max_age=365 * 86400)
    return response


def error(request: Request, words: i18n.Words, status: int, message: str) -> Response:
    return render(request, words, "error.html", status, code=status, message=message)


def not_found(request: Request, words: i18n.Words) -> Response:
    return error(request, words, 404, words("error.not_found"))


def secured(response: Response) -> Response:
    response.headers.update(HEADERS)
    return response


def redirect(url: str) -> Response:
    """After a form: to the page that shows what it did (POST, redirect, GET)."""
    return secured(RedirectResponse(url, status_code=303))
