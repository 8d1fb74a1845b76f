"""The auditors' endpoints (roles auditor and admin): ``GET /v1/reports/daily``, the daily indicators of the
campaign, from the rollups (core/rollup.py, core/report.py), never from a scan of the invoices;
``GET /v1/admin/reconciliation?date=YYYY-MM-DD[&limit=N]``, one day's reconciliation (gateway/reconcile.py); and
``GET /v1/admin/prize-ledger?after=ID&limit=N``, the prize ledger's totals, checks and a page of its movements
(gateway/prize_ledger.py).

``?date=YYYY-MM-DD`` for one day, or ``?from=YYYY-MM-DD&to=YYYY-MM-DD`` for one report per day (at most
``GATEWAY_REPORTS_MAX_DAYS`` days); ``&channel=ID`` for one channel's figures. JSON by default; CSV with
``Accept: text/csv`` (one row per day and scope). Days are those of the campaign's time zone. A bad or missing
parameter is ``400`` ``bad_parameter``.
"""

from __future__ import annotations

import datetime as dt
import re

import orjson
from starlette.requests import Request
from starlette.responses import Response

from core import report
from core.rollup import Rollup
from gateway import auth, codes, prize_ledger, reconcile
from gateway.deps import deps
from gateway.errors import Problem
from gateway.params import int_param

READERS = ("auditor", "admin")
DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
FIRST_DAY = dt.date(1970, 1, 2)  # its first instant is after the epoch in every zone
CHANNEL = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


async def daily(request: Request) -> Response:
    d = deps(request)
    await auth.authenticate(request, READERS, d.clients, d.redis, d.settings.api)
    first, last = days_asked(request, d.settings.reports.max_days)
    channel = request.query_params.get("channel")
    if channel is not None and not CHANNEL.fullmatch(channel):
        raise Problem(codes.BAD_PARAMETER, "channel: a client id (1 to 64 of A-Z a-z 0-9 _ . : -)")
    async with d.pool.acquire() as conn:
        days = await report.read(conn, first, last, channel)
    if "text/csv" in request.headers.get("accept", ""):
        return Response(report.csv_text(days), media_type="text/csv; charset=utf-8")
    body = {
        "format": report.FORMAT,
        "campaign": d.campaign.id,
        "timezone": d.campaign.caps.timezone,
        "channel": channel,
        "days": days,
    }
    return Response(orjson.dumps(body), media_type="application/json")


def days_asked(request: Request, max_days: int) -> tuple[dt.date, dt.date]:
    """The first and last day of ``?date=`` or ``?from=&to=``."""
    params = request.query_params
    if "date" in params:
        if "from" in params or "to" in params:
            raise Problem(codes.BAD_PARAMETER, "give date, or from and to, not both")
        day = parse_day(params["date"], "date")
        return day, day
    if "from" not in params or "to" not in params:
        raise Problem(codes.BAD_PARAMETER, "give date=YYYY-MM-DD, or from=YYYY-MM-DD and to=YYYY-MM-DD")
    first, last = parse_day(params["from"], "from"), parse_day(params["to"], "to")
    if last < first or (last - first).days >= max_days:
        raise Problem(codes.BAD_PARAMETER, f"from..to: from not after to, at most {max_days} days")
    return first, last


def parse_day(raw: str, name: str) -> dt.date:
    """A day of the Unix era: an earlier one has no stream ids (the stores answered 503), the last has no next."""
    try:
        day = dt.date.fromisoformat(raw) if DAY.fullmatch(raw) else None  # not 3.11's other forms (2026-W09-1)
    except ValueError:
        day = None
    if day is None or not FIRST_DAY <= day < dt.date.max:
        raise Problem(codes.BAD_PARAMETER, f"{name}: a date, YYYY-MM-DD, from {FIRST_DAY}")
    return day


async def reconciliation(request: Request) -> Response:
    d = deps(request)
    await auth.authenticate(request, READERS, d.clients, d.redis, d.settings.api)
    raw = request.query_params.get("date")
    if raw is None:
        raise Problem(codes.BAD_PARAMETER, "date=YYYY-MM-DD")
    listed = int_param(request, "limit", d.settings.reports.reconcile_listed, 1, 100_000)
    rollup = Rollup.of(d.campaign)
    found = await reconcile.reconcile(d.pool, d.redis, rollup, d.campaign.dedup.shards, parse_day(raw, "date"), listed)
    return Response(orjson.dumps(found), media_type="application/json")


async def prize_ledger_report(request: Request) -> Response:
    d = deps(request)
    await auth.authenticate(request, READERS, d.clients, d.redis, d.settings.api)
    after = int_param(request, "after", 0, 0, 2**62)
    limit = int_param(request, "limit", 100, 1, 1000)
    async with d.pool.acquire() as conn:
        found = await prize_ledger.summary(conn, d.campaign, after, limit)
    return Response(orjson.dumps(found), media_type="application/json")
