"""The console's routes, mounted at ``/console`` by gateway/app.py. Every page but the login form and the static
files is behind a session and a role (gateway/console/page.py, roles.py); a path the console does not have is
a page of its own, behind a session too, so that nothing under /console tells a stranger anything."""

from __future__ import annotations

import functools
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from gateway.console import auditlog, cases, channels, held, login, lookup, reports, today
from gateway.console.i18n import words_of
from gateway.console.page import Visit, not_found, page, redirect

STATIC = Path(__file__).resolve().parent / "static"
MEDIA = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".svg": "image/svg+xml"}


@functools.cache
def _asset(name: str) -> bytes | None:
    path = STATIC / name
    return path.read_bytes() if path.suffix in MEDIA and path.is_file() else None


async def static(request: Request) -> Response:
    """The console's stylesheet, script and icon: public, as a login page needs them."""
    name = request.path_params["name"]
    data = _asset(name) if "/" not in name else None
    if data is None:
        return not_found(request, words_of(request))
    headers = {"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"}
    return Response(data, media_type=MEDIA[Path(name).suffix], headers=headers)


@page("session")
async def home(visit: Visit) -> Response:
    return redirect("/console/today")


@page("session")
async def missing(visit: Visit) -> Response:
    return not_found(visit.request, visit.words)


def routes() -> list[BaseRoute]:
    """``/console`` and everything under it."""
    pages = [
        Route("/", home, methods=["GET"]),
        Route("/login", login.login_page, methods=["GET"]),
        Route("/login", login.login, methods=["POST"]),
        Route("/logout", login.logout, methods=["POST"]),
        Route("/static/{name}", static, methods=["GET"]),
        Route("/today", today.today, methods=["GET"]),
        Route("/held", held.queue, methods=["GET"]),
        Route("/held", held.decide, methods=["POST"]),
        Route("/invoices", lookup.by_key, methods=["GET"]),
        Route("/invoices", lookup.by_user, methods=["POST"]),
        Route("/cases", cases.listing, methods=["GET"]),
        Route("/cases", cases.open_case, methods=["POST"]),
        Route("/cases/new", cases.new, methods=["GET"]),
        Route("/cases/{case:int}", cases.show, methods=["GET"]),
        Route("/cases/{case:int}/notes", cases.add_note, methods=["POST"]),
        Route("/cases/{case:int}/change", cases.change, methods=["POST"]),
        Route("/reports", reports.reports, methods=["GET"]),
        Route("/reports/daily.csv", reports.csv_download, methods=["GET"]),
        Route("/reports/daily.xlsx", reports.xlsx_download, methods=["GET"]),
        Route("/channels", channels.channels, methods=["GET"]),
        Route("/audit", auditlog.audit_log, methods=["GET"]),
        Route("/{rest:path}", missing, methods=["GET", "POST"]),
    ]
    # "/console" itself is redirected to "/console/" by Starlette's router (redirect_slashes).
    return [Mount("/console", routes=pages)]
