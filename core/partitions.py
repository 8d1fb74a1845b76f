"""The monthly partitions of the tables that grow with the invoices (deploy/migrations/030_partitions.sql): made
ahead of time, never in the hot path, and watched.

The workers call ``ensure`` when they start and every hour after (workers/main.py): the current month's
partitions and the next ``ahead`` months' exist long before a row needs them, so no insert ever waits for DDL
at midnight. ``health`` is what the gauges and alerts read (gateway/ops.py): how many months ahead each table
is covered, and how many rows sit in its default partition (rows of a month nobody created: none, ever).
"""

from __future__ import annotations

import datetime as dt
from typing import NamedTuple

from core import locks
from core.rollup import Conn

# Creating a partition locks its parent briefly; behind a long query that lock would queue every insert after
# it. It gives up instead, and the next hour tries again (months ahead leave room for many tries).
LOCK_TIMEOUT = "5s"
DEFAULT_ROWS_COUNTED = 100_000  # a bounded count: the gauge says "this many or more"

TABLES = """
SELECT p.tbl, p.by_column, p.by_date, p.zone, partition_month(now(), p.zone) AS this_month,
       array(SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
             WHERE i.inhparent = p.tbl::regclass) AS parts
FROM partitioned p ORDER BY p.tbl
"""


class Table(NamedTuple):
    name: str
    column: str
    by_date: bool  # partitioned by a campaign day (date) rather than a time (timestamptz)
    zone: str
    this_month: dt.date
    partitions: frozenset[str]


class Health(NamedTuple):
    table: str
    months_ahead: int  # full months after the current one that have their partition (-1: not even this one)
    default_rows: int


def partition_name(table: str, month: dt.date) -> str:
    return f"{table}_p{month.year:04d}_{month.month:02d}"


def add_months(month: dt.date, n: int) -> dt.date:
    index = month.year * 12 + month.month - 1 + n
    return dt.date(index // 12, index % 12 + 1, 1)


async def tables(conn: Conn) -> list[Table]:
    """The partitioned tables, each with its partitions' names."""
    rows = await conn.fetch(TABLES)
    return [
        Table(r["tbl"], r["by_column"], r["by_date"], r["zone"], r["this_month"], frozenset(r["parts"])) for r in rows
    ]


async def ensure(conn: Conn, ahead: int) -> int | None:
    """Create the partitions missing for this month and the next ``ahead``; returns how many were made, or None
    when another process is at it (its transaction-scoped lock)."""
    async with conn.transaction():
        if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", locks.PARTITIONS):
            return None
        await conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        return int(await conn.fetchval("SELECT ensure_partitions($1)", ahead))


async def health(conn: Conn) -> list[Health]:
    """Per partitioned table: the months covered ahead and the rows in its default partition."""
    found = []
    for t in await tables(conn):
        ahead = -1
        while partition_name(t.name, add_months(t.this_month, ahead + 1)) in t.partitions:
            ahead += 1
        counted = f"SELECT count(*) FROM (SELECT 1 FROM {t.name}_default LIMIT {DEFAULT_ROWS_COUNTED}) d"
        found.append(Health(t.name, ahead, int(await conn.fetchval(counted))))
    return found
