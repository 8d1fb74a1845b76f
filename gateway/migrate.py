"""Applies deploy/migrations/*.sql in name order, each once, each in its own transaction."""

from __future__ import annotations

from pathlib import Path

import asyncpg

from core import locks

MIGRATIONS = Path(__file__).resolve().parent.parent / "deploy" / "migrations"


async def migrate(dsn: str, folder: Path = MIGRATIONS, timezone: str = "Asia/Shanghai") -> list[str]:
    """Apply what is not applied yet; returns the names applied now. Safe to run from several processes.
    ``timezone``: the campaign's, in which the monthly partitions begin and end (030_partitions.sql keeps it)."""
    conn = await asyncpg.connect(dsn)
    applied_now: list[str] = []
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", locks.MIGRATIONS)
        await conn.execute("SELECT set_config('prize.timezone', $1, false)", timezone)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (name text PRIMARY KEY,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations")}
        for path in _files(folder):
            if path.name in done:
                continue
            async with conn.transaction():
                await conn.execute(path.read_text())
                await conn.execute("INSERT INTO schema_migrations (name) VALUES ($1)", path.name)
            applied_now.append(path.name)
    finally:
        await conn.close()
    return applied_now


def _files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.sql"))
