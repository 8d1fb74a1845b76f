"""Migrations are applied by name, each once: a database that got 020 to 022 (issue 15) before 010 (issue 14)
existed gets 010 at its next migrate, and a fresh one gets every migration in order."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import asyncpg

from core.settings import Settings
from gateway.migrate import MIGRATIONS, migrate
from tests.integration.helpers import scratch_dsn

LATE = "010_accountability.sql"
AFTER_LATE = "030"  # the first migration written after 010 was on main


async def _migrated_twice(settings: Settings, name: str, first: Path) -> tuple[list[str], list[str], bool, bool]:
    """A fresh database migrated with the files of ``first``, then with every migration: what each run applied,
    whether an auditor and a daily figure can be saved, and whether the change feed's columns are there."""
    async with scratch_dsn(settings, name) as dsn:
        applied = await migrate(dsn, first)
        then = await migrate(dsn)
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("INSERT INTO api_clients (client_id, secret, role) VALUES ('a', 's', 'auditor')")
            await conn.execute("INSERT INTO report_daily VALUES ('2026-03-01', 'c', 'other', 'received', '', 1, 0)")
            saved = await conn.fetchval("SELECT count(*) FROM report_daily") == 1
            columns = await conn.fetch(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'invoice_events'"
            )
        finally:
            await conn.close()
    return applied, then, saved, {"batch_seq", "tx"} <= {r["column_name"] for r in columns}


def test_a_database_with_the_later_migrations_gets_010_and_a_fresh_one_all_in_order(
    settings: Settings, tmp_path: Path
) -> None:
    every = sorted(p.name for p in MIGRATIONS.glob("*.sql"))
    assert every.index(LATE) < every.index("020_receipt_keys.sql")
    # What a database migrated before 010 existed holds: the others of its time. Those from issue 16 on (030:
    # partitions, of the outbox among others) came after 010 and are applied with it, after it.
    before = [n for n in every if n != LATE and n < AFTER_LATE]
    for name in before:
        shutil.copy(MIGRATIONS / name, tmp_path / name)
    applied, then, saved, feed_columns = asyncio.run(_migrated_twice(settings, "migrations_late", tmp_path))
    assert applied == before and then == [LATE, *(n for n in every if n >= AFTER_LATE)]
    assert saved and feed_columns
    applied, then, saved, feed_columns = asyncio.run(_migrated_twice(settings, "migrations_fresh", MIGRATIONS))
    assert applied == every and then == []
    assert saved and feed_columns
