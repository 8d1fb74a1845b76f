"""The daily rollups behind the reports (``GET /v1/reports/daily``, core/report.py): counters per day (in the
campaign's time zone), channel, industry, metric and reason, added to in the same PostgreSQL transaction as the
change they count, and never recounted from the invoices.

Who adds what, each on the day its event happened:

- the sink: the gateway's tallies carried in the stream entries (received and its amount, accepted,
  duplicate, rejected, rate_limited, capped: on the day of the upload), exactly once by request and part
  (table ``tally_parts``); verified, ineligible, held, reversed (on the day of the verification);
- the sealer: eligible and its amount, and the distinct merchants and consumers among them (``distinct``);
- reversals: reversed and its amount; reviews: ineligible (``rejected_in_review``).

Beside the days, the upload side is counted per UTC hour and channel (``report_hourly``, without industry): the
tallies' figures (``HOURLY``) and red-letter reversals, for the console's uploads per hour and its channels page.

A transaction adds all its deltas in one statement, its rows in key order, so two transactions never wait on
each other in a cycle. Distinct counts are not additive: they are counted per scope (a channel, an industry, both,
or neither; ``ALL`` stands for every channel or industry), each value once per scope and day, from the values
recorded at the finest scope (``report_distinct``).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from collections.abc import Iterable
from zoneinfo import ZoneInfo

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from core.campaign import Campaign, Eligibility
from core.times import local_minute

ALL = ""  # the scope of a distinct count over every channel, or every industry
DISTINCT = ("merchants", "consumers")
Conn = asyncpg.Connection | PoolConnectionProxy
Cell = tuple[dt.date, str, str, str, str]  # day, channel, industry, metric, reason
HourCell = tuple[dt.datetime, str, str, str]  # UTC hour, channel, metric, reason
# What the hourly rollup holds: the tallies' figures (the 202's outcomes, counted at the upload's hour), and
# red-letter reversals (at the reversal's).
HOURLY = ("received", "accepted", "duplicate", "rejected", "rate_limited", "capped", "reversed")

APPLY = """
INSERT INTO report_daily (day, channel, industry, metric, reason, count, amount_fen)
SELECT * FROM unnest($1::date[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::bigint[])
ON CONFLICT (day, channel, industry, metric, reason) DO UPDATE
SET count = report_daily.count + excluded.count, amount_fen = report_daily.amount_fen + excluded.amount_fen
"""

# The distinct merchants and consumers are kept at the finest scope only (a channel and an industry): a value's
# rows there say which wider scopes (every channel, every industry, or both) have counted it, so one row a value
# and scope does for four (8 rows an eligible invoice before, 170 of the 280 µs of PostgreSQL the sealer spent on
# an invoice). The key leads with the value, so a batch's values are looked up on it. Rows of the wider scopes
# ('' for channel or industry) written before migration 090 are left alone and never read.
KNOWN_DISTINCT = """
SELECT d.day, d.kind, d.value, d.channel, d.industry
FROM unnest($1::date[], $2::text[], $3::bigint[]) AS q(day, kind, value)
JOIN report_distinct d ON d.day = q.day AND d.kind = q.kind AND d.value = q.value
WHERE d.channel <> '' AND d.industry <> ''
"""

# No ON CONFLICT: one sealer at a time writes (locks.SEAL), after reading what is there. A row already there
# would mean a value counted twice: the transaction fails instead, and the next seal reads it.
NEW_DISTINCT = """
INSERT INTO report_distinct (day, kind, value, channel, industry)
SELECT * FROM unnest($1::date[], $2::text[], $3::bigint[], $4::text[], $5::text[])
"""

APPLY_HOURLY = """
INSERT INTO report_hourly (hour, channel, metric, reason, count, amount_fen)
SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[])
ON CONFLICT (hour, channel, metric, reason) DO UPDATE
SET count = report_hourly.count + excluded.count, amount_fen = report_hourly.amount_fen + excluded.amount_fen
"""

NEW_TALLIES = """
INSERT INTO tally_parts (request, part, day) SELECT * FROM unnest($1::text[], $2::text[], $3::date[])
ON CONFLICT DO NOTHING
RETURNING request, part
"""


class Rollup:
    """What the rollups need of a campaign: its days (time zone) and its industries (eligible categories)."""

    def __init__(self, timezone: str, eligibility: Eligibility) -> None:
        self.zone = ZoneInfo(timezone)
        self.eligibility = eligibility

    @staticmethod
    def of(campaign: Campaign) -> Rollup:
        return _rollup(campaign.caps.timezone, campaign.eligibility)

    def day(self, at: dt.datetime) -> dt.date:
        return at.astimezone(self.zone).date()

    def day_of_ms(self, ms: int) -> dt.date:
        return local_minute(ms, self.zone).date()  # a batch's invoices share a few minutes: worked out once each

    def industry(self, category: str) -> str:
        return self.eligibility.industry(category)

    @staticmethod
    def hour_of_ms(ms: int) -> dt.datetime:
        """The start of the UTC hour of Unix time ``ms``."""
        return dt.datetime.fromtimestamp(ms // 3_600_000 * 3600, dt.UTC)

    @staticmethod
    def hour_of(at: dt.datetime) -> dt.datetime:
        """The start of the UTC hour of ``at`` (an aware time)."""
        return at.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)

    def window(self, day: dt.date) -> tuple[dt.datetime, dt.datetime]:
        """The day's first instant and the next day's, as aware times."""
        start = dt.datetime.combine(day, dt.time(), self.zone)
        return start, dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), self.zone)


@functools.lru_cache(maxsize=8)
def _rollup(timezone: str, eligibility: Eligibility) -> Rollup:
    return Rollup(timezone, eligibility)


UTC_ANY = Rollup("UTC", Eligibility())  # for callers without a campaign (tests writing a batch directly)


class Deltas:
    """What one transaction adds to the rollups, summed per cell."""

    def __init__(self) -> None:
        self.cells: dict[Cell, list[int]] = {}
        self.hours: dict[HourCell, list[int]] = {}

    def add(
        self, day: dt.date, channel: str, industry: str, metric: str, reason: str = "", count: int = 1, amount: int = 0
    ) -> None:
        cell = self.cells.setdefault((day, channel, industry, metric, reason or ""), [0, 0])
        cell[0] += count
        cell[1] += amount

    def add_hour(
        self, hour: dt.datetime, channel: str, metric: str, reason: str = "", count: int = 1, amount: int = 0
    ) -> None:
        """Count in the hourly rollup too (``hour``: the start of a UTC hour, ``Rollup.hour_of_ms``)."""
        cell = self.hours.setdefault((hour, channel, metric, reason or ""), [0, 0])
        cell[0] += count
        cell[1] += amount

    def __bool__(self) -> bool:
        return bool(self.cells) or bool(self.hours)


async def apply(conn: Conn, deltas: Deltas) -> None:
    """Add ``deltas``, the days in one statement and the hours in another, rows in key order (the caller's
    transaction): every writer takes the rows of both tables in the same order."""
    for statement, found in ((APPLY, deltas.cells), (APPLY_HOURLY, deltas.hours)):
        cells = sorted((cell, n) for cell, n in found.items() if n[0] or n[1])
        if cells:
            columns = list(zip(*(cell for cell, _ in cells), strict=True))
            await conn.execute(statement, *columns, [n[0] for _, n in cells], [n[1] for _, n in cells])


async def new_tallies(conn: Conn, parts: Iterable[tuple[str, str, dt.date]]) -> set[tuple[str, str]]:
    """Record tally parts (request, part, day) as counted; returns those counted for the first time now."""
    days = {(request, part): day for request, part, day in parts}
    if not days:
        return set()
    found = await conn.fetch(NEW_TALLIES, [r for r, _ in days], [p for _, p in days], list(days.values()))
    return {(r["request"], r["part"]) for r in found}


async def count_distinct(conn: Conn, deltas: Deltas, eligible: Iterable[tuple[dt.date, str, str, str, str]]) -> None:
    """Add to ``deltas`` the merchants and consumers new to each scope among ``eligible`` (day, channel,
    industry, seller tax id, person hash), and record them at the finest scope."""
    wanted: dict[tuple[dt.date, str, int], set[tuple[str, str]]] = {}
    for day, channel, industry, seller, person in eligible:
        wanted.setdefault((day, "m", _hash64(seller)), set()).add((channel, industry))
        wanted.setdefault((day, "p", _person64(person)), set()).add((channel, industry))
    if not wanted:
        return
    known: dict[tuple[dt.date, str, int], set[tuple[str, str]]] = {value: set() for value in wanted}
    for r in await conn.fetch(KNOWN_DISTINCT, *(list(c) for c in zip(*wanted, strict=True))):
        known[(r["day"], r["kind"], r["value"])].add((r["channel"], r["industry"]))
    new: list[tuple[dt.date, str, int, str, str]] = []
    for (day, kind, value), scopes in wanted.items():
        metric = "merchants" if kind == "m" else "consumers"
        seen = known[(day, kind, value)]
        for channel, industry in sorted(scopes - seen):
            for scope_channel, scope_industry, counted in (
                (ALL, ALL, bool(seen)),
                (channel, ALL, any(c == channel for c, _ in seen)),
                (ALL, industry, any(i == industry for _, i in seen)),
            ):
                if not counted:
                    deltas.add(day, scope_channel, scope_industry, metric)
            deltas.add(day, channel, industry, metric)
            seen.add((channel, industry))
            new.append((day, kind, value, channel, industry))
    if new:
        await conn.execute(NEW_DISTINCT, *(list(c) for c in zip(*new, strict=True)))


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _person64(person: str) -> int:
    """A person is already a keyed hash (hex): its first 64 bits (anything else is hashed)."""
    try:
        return _signed(int(person[:16], 16)) if len(person) >= 16 else _hash64(person)
    except ValueError:
        return _hash64(person)


@functools.lru_cache(maxsize=4096)  # sellers recur
def _hash64(value: str) -> int:
    return _signed(int.from_bytes(hashlib.blake2b(value.encode(), digest_size=8).digest(), "big"))
