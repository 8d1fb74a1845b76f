"""Channels: per channel over the last hours, what it sent and what became of it: invoices received and their
rate per hour, accepted, duplicates, refusals (rejected by the rules, rate-limited, over a cap) and red-letter
reversals, with each hour's uploads as a line. From the hourly rollup (core/rollup.py), never from the invoices;
every channel client is listed, one that sent nothing with zeros."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from starlette.responses import Response

from gateway.console import charts
from gateway.console.page import Visit, page

CHOICES = (1, 3, 6, 12, 24, 48)
DEFAULT_HOURS = 6
REFUSED = ("rejected", "rate_limited", "capped")

HOURLY = """
SELECT hour, channel, metric, sum(count)::bigint AS n FROM report_hourly
WHERE hour >= $1 AND hour < $2 GROUP BY hour, channel, metric
"""


@page("channels")
async def channels(visit: Visit) -> Response:
    """``?hours=N``: the last N hours (1 to 48), this one included."""
    asked = visit.request.query_params.get("hours", "")
    hours = int(asked) if asked.isdigit() and int(asked) in CHOICES else DEFAULT_HOURS
    now = dt.datetime.now(dt.UTC)
    end = now.replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)
    start = end - dt.timedelta(hours=hours)
    rows = await visit.deps.pool.fetch(HOURLY, start, end)
    known = [c.client_id for c in visit.deps.clients.all() if c.role == "channel"]
    found = figures(rows, known, [start + dt.timedelta(hours=h) for h in range(hours)])
    for row in found:
        row["trend"] = charts.spark(row["series"], f"{row['channel']}: {visit.words('channels.per_hour')}")
    return visit.render("channels.html", rows=found, hours=hours, choices=CHOICES)


def figures(rows: Any, known: list[str], hours: list[dt.datetime]) -> list[dict[str, Any]]:
    """Per channel, busiest first: the totals of each metric, refusals, shares, and received per hour."""
    totals: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    series: dict[str, dict[dt.datetime, int]] = defaultdict(lambda: defaultdict(int))
    for r in rows:
        totals[r["channel"]][r["metric"]] += r["n"]
        if r["metric"] == "received":
            series[r["channel"]][r["hour"]] += r["n"]
    found = []
    for channel in sorted(set(known) | set(totals)):
        t = totals[channel]
        received, refused = t["received"], sum(t[m] for m in REFUSED)
        per_hour = [series[channel].get(h, 0) for h in hours]
        found.append(
            {
                "channel": channel,
                **{m: t[m] for m in ("received", "accepted", "duplicate", *REFUSED, "reversed")},
                "refused": refused,
                "refused_share": refused / received if received else 0.0,
                "duplicate_share": t["duplicate"] / received if received else 0.0,
                "per_hour": received / len(hours),
                "peak": max(per_hour, default=0),
                "series": per_hour,
            }
        )
    return sorted(found, key=lambda f: (-f["received"], f["channel"]))
