"""``gateway archive --month YYYY-MM --out DIR``: a month's data as one gzip'd JSON-lines file per table and a
signed manifest (gateway/manifest.py), checked by gateway/audit_kit.py without a database (docs/archives.md).

A closed month (every day of it with figures closed, the month over) is final; ``--through-today`` writes the
open month as it is now, marked ``snapshot``. Every file is read in one REPEATABLE READ transaction, so they
agree with each other, and streamed: PostgreSQL writes each row's JSON (COPY of ``row_to_json``), which is
compressed and hashed chunk by chunk on its way to disk, so memory does not grow with the month
(benchmarks/archive_bench.py). The feed's part is batch-aligned: the batches sealed in the month and every
entry of them, so the kit recomputes each batch's hash from the archive alone.

Why gzip'd JSON lines (benchmarks/results/archive_formats.md): an auditor reads them with zcat and any JSON
tool, and the kit with Python's standard library; they keep nulls and types, which CSV does not; Parquet was
smaller and faster to read but needs pyarrow to open.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
from pathlib import Path
from typing import Any, NamedTuple

import asyncpg

from core.campaign import Campaign
from core.partitions import add_months
from core.rollup import Rollup
from core.times import iso_ms
from gateway import manifest

FORMAT = "prize-archive/1"


class Export(NamedTuple):
    table: str
    where: str  # $1, $2: the window's first and end instant, or its first and end day (by_date)
    order: str
    by_date: bool = False


EXPORTS = (
    Export("invoices", "accepted_at >= $1 AND accepted_at < $2", "accepted_at, key"),
    Export("invoice_events", "at >= $1 AND at < $2", "id"),
    Export("feed_batches", "sealed_at >= $1 AND sealed_at < $2", "seq"),
    Export(
        "feed_entries",
        "batch_seq IN (SELECT seq FROM feed_batches WHERE sealed_at >= $1 AND sealed_at < $2)",
        "batch_seq, id",
    ),
    Export("outbox", "created_at >= $1 AND created_at < $2", "id"),
    Export("duplicate_uploads", "at >= $1 AND at < $2", "at, key, channel"),
    Export("reversals", "at >= $1 AND at < $2", "at, key"),
    Export("reviews", "at >= $1 AND at < $2", "id"),
    Export("accepted_ledger", "day >= $1 AND day < $2", "day, key", True),
    Export("report_daily", "day >= $1 AND day < $2", "day, channel, industry, metric, reason", True),
    Export("report_distinct", "day >= $1 AND day < $2", "day, kind, value, channel, industry", True),  # its key
    Export("report_days", "day >= $1 AND day < $2", "day", True),
    Export("tally_parts", "day >= $1 AND day < $2", "day, request, part", True),
)

FEED = """
SELECT min(seq) AS first_seq, max(seq) AS last_seq, count(*) AS batches,
       (array_agg(prev_sha256 ORDER BY seq))[1] AS first_prev_sha256,
       (array_agg(sha256 ORDER BY seq DESC))[1] AS last_sha256
FROM feed_batches WHERE sealed_at >= $1 AND sealed_at < $2
"""
UNCLOSED = """
SELECT DISTINCT day FROM report_daily r
WHERE day >= $1 AND day < $2 AND NOT EXISTS (SELECT 1 FROM report_days c WHERE c.day = r.day) ORDER BY day
"""


RECORD = """
INSERT INTO archives (month, kind, path, manifest_sha256, made_at, made_by) VALUES ($1, $2, $3, $4, now(), $5)
"""


def prepare(folder: Path) -> Path:
    """The archive's folder, made if missing: it must be empty (an archive is a folder of its own)."""
    folder.mkdir(parents=True, exist_ok=True)
    if any(folder.iterdir()):
        raise ArchiveError(f"{folder} is not empty: an archive goes into a folder of its own")
    return folder.resolve()


class ArchiveError(Exception):
    """The archive cannot be made as asked (a month not closed, a folder not empty): the reason, for the CLI."""


class Window(NamedTuple):
    month: dt.date
    start: dt.datetime
    end: dt.datetime  # the month's end, or now for a snapshot
    kind: str  # "closed" or "snapshot"

    @property
    def days(self) -> tuple[dt.date, dt.date]:
        return self.month, add_months(self.month, 1)


def window(month: dt.date, rollup: Rollup, now: dt.datetime, snapshot: bool) -> Window:
    """A month's window in the campaign's time zone: to its end, or to now for a snapshot of the open month."""
    start, _ = rollup.window(month)
    end, _ = rollup.window(add_months(month, 1))
    if snapshot:
        if not start <= now < end:
            raise ArchiveError(f"--through-today archives the current month, not {month:%Y-%m}")
        return Window(month, start, now, "snapshot")
    if now < end:
        raise ArchiveError(f"{month:%Y-%m} is not over: --through-today writes a snapshot of it")
    return Window(month, start, end, "closed")


class Writer:
    """One file: compressed and hashed chunk by chunk as PostgreSQL streams the rows' JSON. Without a path, only
    the content's hash and rows are kept (``gateway archive detach`` compares them with an archive's)."""

    def __init__(self, path: Path | None) -> None:
        self.file = None if path is None else open(path, "wb")  # noqa: SIM115 - closed in close()
        self.digest = hashlib.sha256()  # of the file: the compressed bytes
        self.content = hashlib.sha256()  # of the rows' JSON lines as PostgreSQL wrote them
        self.size = 0
        self.rows = 0
        self.gzip = None if path is None else gzip.GzipFile(fileobj=self, mode="wb", compresslevel=6, mtime=0)

    def write(self, data: bytes) -> int:  # the GzipFile's output: hashed on its way to disk
        assert self.file is not None
        self.digest.update(data)
        self.size += len(data)
        return self.file.write(data)

    def flush(self) -> None:
        if self.file is not None:
            self.file.flush()

    async def take(self, chunk: bytes) -> None:  # COPY's output: one JSON text a line
        self.rows += chunk.count(b"\n")
        self.content.update(chunk)
        if self.gzip is not None:
            self.gzip.write(chunk)

    def close(self) -> None:
        if self.gzip is not None and self.file is not None:
            self.gzip.close()
            self.file.close()


# A table's columns as written: not those PostgreSQL derives from them (invoices' held and reversed_at, stored
# for its indexes: migration 093), which an archive would only repeat.
COLUMNS = """
SELECT column_name, data_type FROM information_schema.columns WHERE table_name = $1 AND is_generated = 'NEVER'
ORDER BY ordinal_position
"""


async def stream(conn: asyncpg.Connection, e: Export, bounds: tuple[Any, Any], writer: Writer) -> dict[str, str]:
    """Stream one table's rows of the window, in the archive's order, as JSON lines into ``writer``; returns the
    columns written, with their types."""
    columns = {r["column_name"]: r["data_type"] for r in await conn.fetch(COLUMNS, e.table)}
    chosen = ", ".join(f'"{c}"' for c in columns)
    query = f"SELECT row_to_json(t)::text FROM (SELECT {chosen} FROM {e.table} WHERE {e.where} ORDER BY {e.order}) t"
    try:
        # CSV with a quote and a delimiter that JSON text never holds raw: each line is the JSON as it is.
        await conn.copy_from_query(query, *bounds, output=writer.take, format="csv", delimiter="\x02", quote="\x01")
    finally:
        writer.close()
    return columns


async def export(conn: asyncpg.Connection, folder: Path, e: Export, bounds: tuple[Any, Any]) -> dict[str, Any]:
    """One table's rows of the window into ``<table>.jsonl.gz``; its manifest entry."""
    name = f"{e.table}.jsonl.gz"
    writer = Writer(folder / name)
    columns = await stream(conn, e, bounds, writer)
    return {
        "name": name,
        "table": e.table,
        "rows": writer.rows,
        "bytes": writer.size,
        "sha256": writer.digest.hexdigest(),
        "content_sha256": writer.content.hexdigest(),
        "columns": columns,
        "selected": e.where.replace("$1", "first").replace("$2", "end"),
    }


async def write(
    conn: asyncpg.Connection,
    campaign: Campaign,
    w: Window,
    folder: Path,
    key: Any,
    made_by: str,
) -> dict[str, Any]:
    """Write the archive of ``w`` into ``folder`` (``prepare``d) and record it; returns the manifest."""
    await conn.execute("SET TIME ZONE 'UTC'")
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        if w.kind == "closed" and (days := await conn.fetch(UNCLOSED, *w.days)):
            raise ArchiveError(f"{w.month:%Y-%m} has days not closed yet ({days[0]['day']}...): not archived")
        files = [await export(conn, folder, e, w.days if e.by_date else (w.start, w.end)) for e in EXPORTS]
        feed = dict(await conn.fetchrow(FEED, w.start, w.end) or {})
        schema = await conn.fetchval("SELECT max(name) FROM schema_migrations")
        as_of = await conn.fetchval("SELECT now()")  # the snapshot every file was read in
    found = {
        "format": FORMAT,
        "campaign": campaign.id,
        "month": f"{w.month:%Y-%m}",
        "kind": w.kind,
        "window": {"from": iso_ms(w.start), "to": iso_ms(w.end), "timezone": campaign.caps.timezone},
        "files": files,
        "feed": feed,
        "schema_version": schema,
        "code_version": manifest.code_version(),
        "as_of": iso_ms(as_of),
        "made_at": iso_ms(dt.datetime.now(dt.UTC)),
        "made_by": made_by,
    }
    sha = manifest.write_signed(folder, found, key)
    await conn.execute(RECORD, w.month, w.kind, str(folder), sha, made_by)
    return found
