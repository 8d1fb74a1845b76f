"""Closing days: at ``GATEWAY_REPORTS_CLOSE_HOUR`` of the next day (in the campaign's time zone), a day's report
is made from the rollups (core/report.py), kept in ``report_days``, written as files
(``daily-YYYY-MM-DD.json`` and ``.csv`` under ``GATEWAY_REPORTS_DIR``) and sent to the national platform (an
outbox record, core/outbox.py), all of it once. The export process (``gateway-worker export``) closes the days
due every minute; ``gateway-worker close-day`` closes one by hand.

A day closes only once the intake streams hold no entry of it (an entry's tally counts on its upload's day): a
closed day's figures never change afterwards, since every later event is counted on its own, later, day. The
tally parts of a closed day are forgotten then (no entry of it can come again).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from pathlib import Path
from typing import Any

import asyncpg
import orjson

from core import contract, keys, locks, outbox, report
from core.rollup import Rollup
from core.stores import RedisClient
from core.times import iso_ms
from workers import metrics

log = logging.getLogger(__name__)


# The days up to $1 with any figure and not closed yet (a day closed by hand is skipped; a day without a single
# figure has nothing to close). The days are found by a loose index scan of report_daily's primary key: one probe
# per day, not a read of its rows.
UNCLOSED = """
WITH RECURSIVE days AS (
    SELECT min(day) AS day FROM report_daily
    UNION ALL
    SELECT (SELECT min(r.day) FROM report_daily r WHERE r.day > days.day) FROM days WHERE days.day < $1
)
SELECT day FROM days
WHERE day <= $1 AND NOT EXISTS (SELECT 1 FROM report_days c WHERE c.day = days.day) ORDER BY day
"""


class Closer:
    def __init__(self, pool: asyncpg.Pool, redis: RedisClient, rollup: Rollup, campaign: str, shards: int) -> None:
        self.pool, self.redis, self.rollup = pool, redis, rollup
        self.campaign, self.shards = campaign, shards

    async def close_due(self, now: dt.datetime, close_hour: int, folder: Path) -> list[dt.date]:
        """Close, in order, every day with figures due at ``now`` that is not closed yet; stop at the first whose
        entries are still queued. Returns the days closed."""
        today = self.rollup.day(now)
        last = today - dt.timedelta(days=1 if now.astimezone(self.rollup.zone).hour >= close_hour else 2)
        await self.rewrite_missing(folder, last - dt.timedelta(days=7))
        closed: list[dt.date] = []
        for row in await self.pool.fetch(UNCLOSED, last):
            day = row["day"]
            if not await self.quiet(day):
                log.info("day %s is due but entries of it are still queued: closed later", day)
                break
            if await self.close(day, folder) is not None:
                closed.append(day)
        return closed

    async def rewrite_missing(self, folder: Path, since: dt.date) -> None:
        """The files of days closed since ``since`` that are missing (the disk failed after the day closed)."""
        for row in await self.pool.fetch("SELECT day, report FROM report_days WHERE day >= $1", since):
            if not (folder / f"daily-{row['day'].isoformat()}.json").exists():
                write_files(folder, row["day"], orjson.loads(row["report"]))

    async def quiet(self, day: dt.date) -> bool:
        """Whether no intake stream holds an entry that could be of ``day`` (or of an earlier day)."""
        _, end = self.rollup.window(day)
        last_id = f"{int(end.timestamp() * 1000) + contract.LATE_ENTRY_MS}-0"
        for shard in range(self.shards):
            if await self.redis.xrange(keys.stream(shard), "-", last_id, count=1):
                return False
        return True

    async def close(self, day: dt.date, folder: Path) -> dict[str, Any] | None:
        """Close ``day`` (its report, its outbox record, once) and write its files; returns the report, or None
        when another process is closing days now."""
        async with self.pool.acquire() as conn, conn.transaction():
            if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", locks.CLOSE_DAY):
                return None
            stored = await conn.fetchval("SELECT report FROM report_days WHERE day = $1", day)
            if stored is not None:
                body: dict[str, Any] = orjson.loads(stored)
            else:
                body = await self._report(conn, day)
                await conn.execute(
                    "INSERT INTO report_days (day, closed_at, report) VALUES ($1, now(), $2::jsonb)",
                    day,
                    orjson.dumps(body).decode(),
                )
                await outbox.add(conn, [outbox.report(day, body)])
                await conn.execute("DELETE FROM tally_parts WHERE day <= $1", day)
                metrics.DAYS_CLOSED.inc()
                log.info("day %s closed", day)
        write_files(folder, day, body)
        return body

    async def _report(self, conn: Any, day: dt.date) -> dict[str, Any]:
        (found,) = await report.read(conn, day, day)
        found["closed"] = True
        now = await conn.fetchval("SELECT now()")
        return {
            "format": report.FORMAT,
            "campaign": self.campaign,
            "timezone": self.rollup.zone.key,
            "closed_at": iso_ms(now),
            "channel": None,
            "days": [found],
        }


def write_files(folder: Path, day: dt.date, body: dict[str, Any]) -> None:
    """``daily-<day>.json`` and ``.csv``, each written whole or not at all (a temporary file, then a rename)."""
    folder.mkdir(parents=True, exist_ok=True)
    for suffix, text in (
        ("json", orjson.dumps(body, option=orjson.OPT_INDENT_2).decode() + "\n"),
        ("csv", report.csv_text(body["days"])),
    ):
        path = folder / f"daily-{day.isoformat()}.{suffix}"
        partial = path.with_suffix(f".{suffix}.tmp")
        partial.write_text(text)
        os.replace(partial, path)
