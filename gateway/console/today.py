"""Today: the day's indicators, as the daily report gives them (core/report.py, the same call as
``GET /v1/reports/daily``), the uploads per hour (the hourly rollup), the outcome mix, the top rejection reasons
and the figures per channel. Nothing here reads the invoices."""

from __future__ import annotations

import datetime as dt
from typing import Any

from starlette.responses import Response

from core import report
from core.rollup import Rollup
from gateway.console import charts
from gateway.console.page import Visit, page

MIX = ("accepted", "duplicate", "rejected", "rate_limited", "capped")
CARDS = (
    *("received", "accepted", "duplicate", "rejected", "rate_limited", "capped"),
    *("verified", "eligible", "ineligible", "held", "reversed", "merchants", "consumers"),
)
AMOUNTS = ("received_amount_fen", "eligible_amount_fen", "reversed_amount_fen")

HOURS = """
SELECT hour, sum(count)::bigint AS n FROM report_hourly
WHERE hour >= $1 AND hour < $2 AND metric = 'received' GROUP BY hour
"""


@page("today")
async def today(visit: Visit) -> Response:
    """The indicators of today in the campaign's time zone."""
    rollup = Rollup.of(visit.deps.campaign)
    day = rollup.day(dt.datetime.now(dt.UTC))
    async with visit.deps.pool.acquire() as conn:
        (figures,) = await report.read(conn, day, day)
        start, end = rollup.window(day)
        per_hour = {r["hour"]: r["n"] for r in await conn.fetch(HOURS, start, end)}
    hours = [start + dt.timedelta(hours=h) for h in range(24)]
    words = visit.words
    zone = rollup.zone
    hourly = [(f"{h.astimezone(zone):%H}", int(per_hour.get(h, 0))) for h in hours]
    return visit.render(
        "today.html",
        day=figures,
        cards=CARDS,
        amounts=AMOUNTS,
        zone=visit.deps.campaign.caps.timezone,
        per_hour=charts.columns(hourly, words("today.per_hour")),
        mix=charts.stack([(m, words(f"figure.{m}"), figures[m]) for m in MIX], words("today.mix")),
        mix_keys=MIX,
        reasons=charts.rows(top_reasons(figures, words.reason), words("today.top_reasons")),
        channels=charts.rows(
            [(c["channel"], c["received"]) for c in figures["by_channel"]], words("today.received_by_channel")
        ),
    )


def top_reasons(day: dict[str, Any], label: Any, n: int = 8) -> list[tuple[str, int]]:
    """The day's most frequent reasons of refusal (rejected by the rules, or over a cap), largest first."""
    counts: dict[str, int] = {}
    for figure in ("rejected_by_reason", "capped_by_reason"):
        for reason, count in day[figure].items():
            counts[reason] = counts.get(reason, 0) + count
    ranked = sorted(counts.items(), key=lambda rc: (-rc[1], rc[0]))[:n]
    return [(label(reason), count) for reason, count in ranked]
