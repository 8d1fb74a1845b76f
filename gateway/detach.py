"""``gateway archive detach --month YYYY-MM`` and ``gateway archive drop --month YYYY-MM`` (docs/archives.md).

Detach takes a month's partitions out of the live tables (they stay in the database as tables of their own, to
be moved to cheaper storage), and only on the evidence that nothing is lost: the month's closed archive, found
where ``gateway archive`` recorded it, must verify (files, signature with our own key, feed chain: the auditor's
kit), and each partition must hold exactly what the archive holds, row for row (its rows streamed again and
hashed as the archive's were). The outbox's partition must have nothing left to deliver, and the feed entries'
must all be sealed into batches the archive covers; a partition whose entries reach a later month's batches
waits for that month's archive (said so, the others detached).

Drop removes detached partitions for good, once the campaign's retention period (``retention_years``) after
the month is over and its archive still verifies.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

import asyncpg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from core import locks
from core.campaign import Campaign
from core.partitions import add_months, partition_name
from core.rollup import Rollup
from gateway import archive, audit_kit, manifest
from gateway.archive import ArchiveError, Writer

# The partitioned tables archived by the partition's own bounds: the archive's file is the partition, row for row.
SAME_ROWS = (
    "invoices",
    "invoice_events",
    "outbox",
    "duplicate_uploads",
    "accepted_ledger",
    "report_distinct",
    "tally_parts",
)
LOCK_TIMEOUT = "5s"


async def recorded(conn: asyncpg.Connection, month: dt.date) -> asyncpg.Record:
    """The month's latest closed archive as ``gateway archive`` recorded it."""
    row = await conn.fetchrow(
        "SELECT * FROM archives WHERE month = $1 AND kind = 'closed' ORDER BY id DESC LIMIT 1", month
    )
    if row is None:
        raise ArchiveError(f"no closed archive of {month:%Y-%m} was made: `gateway archive --month` first")
    return row


def verified(folder: Path, sha256: str, key: Ed25519PrivateKey) -> dict[str, Any]:
    """The archive's manifest, if the kit finds nothing wrong, it is the manifest recorded, and our key signed it."""
    report = audit_kit.Report()
    audit_kit.check_archive(folder, None, report)
    body = (folder / manifest.MANIFEST).read_bytes()
    found: dict[str, Any] = json.loads(body)
    if report.problems:
        raise ArchiveError(f"the archive in {folder} does not verify: {report.problems[0]}")
    if hashlib.sha256(body).hexdigest() != sha256 or found.get("key_id") != manifest.key_id(key):
        raise ArchiveError(f"the archive in {folder} is not the one recorded, or not signed with our key")
    return found


async def attached(conn: asyncpg.Connection, table: str, month: dt.date) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = to_regclass($1) AND inhparent = $2::regclass)",
            partition_name(table, month),
            table,
        )
    )


async def same_rows(conn: asyncpg.Connection, files: dict[str, Any], w: archive.Window) -> list[str]:
    """The tables whose partition no longer holds what the archive holds (changed since: archive again)."""
    changed = []
    for e in (e for e in archive.EXPORTS if e.table in SAME_ROWS):
        writer = Writer(None)
        await archive.stream(conn, e, w.days if e.by_date else (w.start, w.end), writer)
        if (writer.rows, writer.content.hexdigest()) != (files[e.table]["rows"], files[e.table]["content_sha256"]):
            changed.append(e.table)
    return changed


async def feed_ready(conn: asyncpg.Connection, month: dt.date, last_seq: int | None) -> str | None:
    """Why the month's feed entries partition cannot go yet, or None."""
    part = partition_name("feed_entries", month)
    row = await conn.fetchrow(
        f"SELECT count(*) FILTER (WHERE batch_seq IS NULL) AS n, max(batch_seq) AS top FROM {part}"
    )
    assert row is not None
    if row["n"]:
        return f"{row['n']} of its entries are not sealed yet"
    if row["top"] is not None and (last_seq is None or row["top"] > last_seq):
        return f"entries of it are in batch {row['top']}, after this archive's: detach again once that month's is made"
    return None


async def detach(conn: asyncpg.Connection, campaign: Campaign, month: dt.date, key: Ed25519PrivateKey) -> list[str]:
    """Detach the month's partitions that its verified archive holds; returns what was done, a line each."""
    w = archive.window(month, Rollup.of(campaign), dt.datetime.now(dt.UTC), snapshot=False)
    row = await recorded(conn, month)
    found = verified(Path(row["path"]), row["manifest_sha256"], key)
    files = {f["table"]: f for f in found["files"]}
    await conn.execute("SET TIME ZONE 'UTC'")
    lines = []
    async with conn.transaction(isolation="repeatable_read"):
        await conn.execute("SELECT pg_advisory_xact_lock($1)", locks.ARCHIVE)
        await conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        if changed := await same_rows(conn, files, w):
            raise ArchiveError(f"{', '.join(changed)} changed since the archive was made: archive {month:%Y-%m} again")
        if await conn.fetchval(f"SELECT count(*) FROM {partition_name('outbox', month)} WHERE delivered_at IS NULL"):
            raise ArchiveError("the month's outbox still has records to deliver (or parked): not detached")
        tables = [t for t in SAME_ROWS if await attached(conn, t, month)]
        if await attached(conn, "feed_entries", month):
            why = await feed_ready(conn, month, found["feed"]["last_seq"])
            tables += [] if why else ["feed_entries"]
            lines += [f"feed_entries stays attached: {why}"] if why else []
        for t in tables:
            await conn.execute(f"ALTER TABLE {t} DETACH PARTITION {partition_name(t, month)}")
            lines.append(f"detached {partition_name(t, month)}")
        await conn.execute("UPDATE archives SET detached_at = now() WHERE id = $1", row["id"])
    return lines


async def drop(conn: asyncpg.Connection, campaign: Campaign, month: dt.date, key: Ed25519PrivateKey) -> list[str]:
    """Drop the month's detached partitions once the retention period is over and its archive still verifies."""
    keep_until = add_months(month, 12 * campaign.retention_years + 1)
    if dt.date.today() < keep_until:
        raise ArchiveError(f"{month:%Y-%m} is kept until {keep_until} ({campaign.retention_years} years): not dropped")
    row = await recorded(conn, month)
    if row["detached_at"] is None:
        raise ArchiveError(f"{month:%Y-%m} is not detached: `gateway archive detach --month` first")
    verified(Path(row["path"]), row["manifest_sha256"], key)
    lines = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", locks.ARCHIVE)
        for t in (*SAME_ROWS, "feed_entries"):
            name = partition_name(t, month)
            if await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", name) and not await attached(conn, t, month):
                await conn.execute(f"DROP TABLE {name}")
                lines.append(f"dropped {name}")
        await conn.execute("UPDATE archives SET dropped_at = now() WHERE id = $1", row["id"])
    return lines
