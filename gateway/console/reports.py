"""Reports: the daily reports of a range of days as tables, and as CSV and XLSX downloads. The figures are those
of ``GET /v1/reports/daily`` (core/report.py reads the rollups), and the CSV is the same text the API answers
with ``Accept: text/csv``. Each download is an export, in the audit log."""

from __future__ import annotations

import datetime as dt
from typing import Any

from starlette.responses import Response

from core import report
from core.rollup import Rollup
from gateway import audit, codes, metrics
from gateway.console import spreadsheet
from gateway.console.page import Visit, page, secured
from gateway.errors import Problem
from gateway.reports import CHANNEL, parse_day

SHOWN = ("received", "accepted", "duplicate", "rejected", "rate_limited", "capped", "verified", "eligible")
SHOWN_AFTER = ("ineligible", "held", "reversed", "merchants", "consumers")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


async def _days(visit: Visit) -> tuple[dt.date, dt.date, str | None, list[dict[str, Any]]]:
    """The days asked (``?from=&to=``, the last 7 days by default, at most ``GATEWAY_REPORTS_MAX_DAYS``) and
    ``?channel=``, and their reports."""
    params = visit.request.query_params
    today = Rollup.of(visit.deps.campaign).day(dt.datetime.now(dt.UTC))
    last = parse_day(params["to"], "to") if params.get("to") else today
    first = parse_day(params["from"], "from") if params.get("from") else last - dt.timedelta(days=6)
    longest = visit.deps.settings.reports.max_days
    if last < first or (last - first).days >= longest:
        raise Problem(codes.BAD_PARAMETER, f"from..to: from not after to, at most {longest} days")
    channel = params.get("channel") or None
    if channel is not None and not CHANNEL.fullmatch(channel):
        raise Problem(codes.BAD_PARAMETER, "channel: a client id")
    async with visit.deps.pool.acquire() as conn:
        days = await report.read(conn, first, last, channel)
    return first, last, channel, days


@page("reports")
async def reports(visit: Visit) -> Response:
    """The days as a table, and the last of them per channel and per industry."""
    first, last, channel, days = await _days(visit)
    channels = sorted(c.client_id for c in visit.deps.clients.all() if c.role == "channel")
    query = f"from={first}&to={last}" + (f"&channel={channel}" if channel else "")
    return visit.render(
        "reports.html",
        days=days,
        first=first,
        last=last,
        channel=channel,
        channels=channels,
        shown=SHOWN,
        shown_after=SHOWN_AFTER,
        query=query,
    )


@page("reports")
async def csv_download(visit: Visit) -> Response:
    """The days as CSV: the API's own text."""
    first, last, channel, days = await _days(visit)
    await _exported(visit, first, last, channel, "csv")
    return _download(report.csv_text(days).encode(), "text/csv; charset=utf-8", f"daily-{first}-{last}.csv")


@page("reports")
async def xlsx_download(visit: Visit) -> Response:
    """The days as an XLSX workbook."""
    first, last, channel, days = await _days(visit)
    await _exported(visit, first, last, channel, "xlsx")
    body = spreadsheet.daily_xlsx(days, f"{visit.deps.campaign.id} {first}..{last}")
    return _download(body, XLSX, f"daily-{first}-{last}.xlsx")


async def _exported(visit: Visit, first: dt.date, last: dt.date, channel: str | None, kind: str) -> None:
    detail = {"from": first.isoformat(), "to": last.isoformat(), "channel": channel, "format": kind}
    async with visit.deps.pool.acquire() as conn:
        await audit.record(conn, visit.actor, "export", "daily report", detail)
    metrics.CONSOLE_ACTIONS.labels("export").inc()


def _download(body: bytes, media_type: str, name: str) -> Response:
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    return secured(Response(body, media_type=media_type, headers=headers))
