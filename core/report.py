"""A day's report, made from the rollups (core/rollup.py): the same shape for ``GET /v1/reports/daily``, the
files of a closed day and the record sent to the national platform (docs/api.md describes every figure).

A day: ``{"date", "closed", "channel", <figures>, "by_channel": [...], "by_industry": [...]}``, the figures of
the whole day (or of one channel), then per channel and per industry. ``csv`` writes one row per day and scope
(channel and industry, ``*`` meaning every one), the by-reason figures as ``reason:count`` lists.

Prize figures: ``prizes_by_tier`` (tier -> prizes awarded that day), ``prize_amount_fen`` (their money) and
``pull_ratio`` (拉动比: the day's eligible amount over that prize money, to 2 decimals), from the rollup rows the
awards write (metric ``prize``, the tier as reason: core/prizes.py); all three null for a scope without prizes.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from core.rollup import ALL, DISTINCT, Conn

FORMAT = "daily-report/1"
EVERY = "*"  # a CSV row's channel or industry when it covers them all
COUNTS = (
    *("received", "accepted", "duplicate", "rejected", "rate_limited", "capped"),
    *("verified", "eligible", "ineligible", "held", "reversed"),
)
WITH_AMOUNT = ("received", "eligible", "reversed")
BY_REASON = ("rejected", "capped", "ineligible", "held")
PRIZES = ("prizes_by_tier", "prize_amount_fen", "pull_ratio")
PRIZE = "prize"  # the rollups' metric of prizes awarded: reason is the tier
Row = tuple[dt.date, str, str, str, str, int, int]  # day, channel, industry, metric, reason, count, amount_fen

READ = """
SELECT day, channel, industry, metric, reason, count, amount_fen FROM report_daily
WHERE day BETWEEN $1 AND $2 AND ($3::text IS NULL OR channel = $3)
"""


def columns() -> list[str]:
    """The figures of a scope, in order: what a CSV row holds after its date, channel and industry."""
    names: list[str] = []
    for metric in COUNTS:
        names.append(metric)
        if metric in WITH_AMOUNT:
            names.append(f"{metric}_amount_fen")
        if metric in BY_REASON:
            names.append(f"{metric}_by_reason")
    return [*names, *DISTINCT, *PRIZES]


class _Scope:
    def __init__(self) -> None:
        self.count: dict[str, int] = defaultdict(int)
        self.amount: dict[str, int] = defaultdict(int)
        self.reasons: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))

    def add(self, metric: str, reason: str, count: int, amount: int) -> None:
        self.count[metric] += count
        self.amount[metric] += amount
        if metric in BY_REASON or metric == PRIZE:
            self.reasons[metric][reason] += count

    def figures(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for metric in COUNTS:
            found[metric] = self.count[metric]
            if metric in WITH_AMOUNT:
                found[f"{metric}_amount_fen"] = self.amount[metric]
            if metric in BY_REASON:
                found[f"{metric}_by_reason"] = {r: n for r, n in sorted(self.reasons[metric].items()) if n}
        for metric in DISTINCT:
            found[metric] = self.count[metric]
        return found | self.prizes()

    def prizes(self) -> dict[str, Any]:
        """The prize figures, null without prizes."""
        money = self.amount[PRIZE]
        if not self.count[PRIZE] and not money:
            return dict.fromkeys(PRIZES)
        return {
            "prizes_by_tier": {t: n for t, n in sorted(self.reasons[PRIZE].items()) if n},
            "prize_amount_fen": money,
            "pull_ratio": round(self.amount["eligible"] / money, 2) if money > 0 else None,
        }


def day(date: dt.date, rows: Iterable[Row], channel: str | None = None, closed: bool = False) -> dict[str, Any]:
    """The report of one day from its rollup rows (those of ``channel`` alone when one is given)."""
    total = _Scope()
    channels: dict[str, _Scope] = defaultdict(_Scope)
    industries: dict[str, _Scope] = defaultdict(_Scope)
    for _, ch, industry, metric, reason, count, amount in rows:
        if metric in DISTINCT:
            # One row per scope (not additive): the day's or the channel's own, per channel, per industry.
            own = channel or ALL
            if industry == ALL:
                if ch == own:
                    total.add(metric, "", count, 0)
                if ch != ALL:
                    channels[ch].add(metric, "", count, 0)
            elif ch == own:
                industries[industry].add(metric, "", count, 0)
            continue
        for scope in (total, channels[ch], industries[industry]):
            scope.add(metric, reason, count, amount)
    return {
        "date": date.isoformat(),
        "closed": closed,
        "channel": channel,
        **total.figures(),
        "by_channel": [{"channel": c, **s.figures()} for c, s in sorted(channels.items())],
        "by_industry": [{"industry": i, **s.figures()} for i, s in sorted(industries.items())],
    }


async def read(
    conn: Conn, first: dt.date, last: dt.date, channel: str | None = None, timeout_s: float | None = None
) -> list[dict[str, Any]]:
    """The reports of ``first`` to ``last``, one per day (a day without any activity has every count 0)."""
    rows = await conn.fetch(READ, first, last, channel, timeout=timeout_s)
    closed = {
        r["day"]
        for r in await conn.fetch(
            "SELECT day FROM report_days WHERE day BETWEEN $1 AND $2", first, last, timeout=timeout_s
        )
    }
    by_day: dict[dt.date, list[Row]] = defaultdict(list)
    for r in rows:
        by_day[r["day"]].append(tuple(r))
    days = [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]
    return [day(d, by_day[d], channel, d in closed) for d in days]


def header() -> list[str]:
    """The names of a table's columns: the date, the scope, the figures."""
    return ["date", "channel", "industry", *columns()]


def table(days: Sequence[dict[str, Any]]) -> Iterator[list[Any]]:
    """One row per day and scope, under ``header()``: the day's figures (channel and industry ``*``), per
    channel, per industry. Values as the report holds them (numbers, null, reason maps): ``csv_text`` writes
    them as text, the console's spreadsheet as cells."""
    names = columns()
    for d in days:
        every = d["channel"] or EVERY
        scopes = [(every, EVERY, d)]
        scopes += [(c["channel"], EVERY, c) for c in d["by_channel"]]
        scopes += [(every, i["industry"], i) for i in d["by_industry"]]
        for channel, industry, figures in scopes:
            yield [d["date"], channel, industry, *(figures[n] for n in names)]


def csv_text(days: Sequence[dict[str, Any]]) -> str:
    """The table of ``days`` as CSV (``GET /v1/reports/daily`` with ``Accept: text/csv``, the closed days' files)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header())
    for row in table(days):
        writer.writerow([cell_text(v) for v in row])
    return out.getvalue()


def cell_text(value: Any) -> str:
    """A value as CSV writes it: nothing for null, ``reason:count`` pairs joined by ``;`` for a reason map."""
    if value is None:
        return ""
    if isinstance(value, dict):
        return ";".join(f"{k}:{v}" for k, v in value.items())
    return str(value)
