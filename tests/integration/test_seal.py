"""The sealer at scale: its query reads the unsealed entries' index, not every entry ever sealed."""

from __future__ import annotations

import asyncio

import asyncpg

from core.settings import Settings
from tests.integration.helpers import index_parents, plan_nodes, scratch_database
from workers.seal import PENDING, seal_once

SEALED = 60_000


def test_the_sealer_reads_only_the_due_entries_however_many_are_sealed_before_them(settings: Settings) -> None:
    async def run() -> tuple[list[str], list[int], list[int]]:  # plan nodes, sealed ids, due ids
        async with scratch_database(settings, "seal_scale") as conn:
            await conn.execute(
                "INSERT INTO feed_batches (seq, sealed_at, count, prev_sha256, sha256) VALUES (1, now(), $1, 'x', 'y')",
                SEALED,
            )
            # A long sealed history, then entries due now and entries held for a day.
            await conn.execute(
                "INSERT INTO feed_entries (key, kind, body, batch_seq)"
                " SELECT 'k' || g, 'add', '{}', 1 FROM generate_series(1, $1) g",
                SEALED,
            )
            await conn.execute(
                "INSERT INTO feed_entries (key, kind, body, ready_at)"
                " SELECT 'h' || g, 'add', '{}', now() + interval '1 day' FROM generate_series(1, 50) g"
            )
            await conn.execute(
                "INSERT INTO feed_entries (key, kind, body) SELECT 'd' || g, 'add', '{}' FROM generate_series(1, 200) g"
            )
            await conn.execute("ANALYZE feed_entries")
            nodes = plan_nodes(await conn.fetchval("EXPLAIN (FORMAT JSON) " + PENDING, 100), await index_parents(conn))
            dsn = settings.stores.database_url.rsplit("/", 1)[0] + "/seal_scale"
            pool = await asyncpg.create_pool(dsn, min_size=1, max_size=1)
            try:
                seq = await seal_once(pool, 100)
                ids = [r["id"] for r in await pool.fetch("SELECT id FROM feed_entries WHERE batch_seq = $1", seq)]
                due = [r["id"] for r in await pool.fetch("SELECT id FROM feed_entries WHERE key LIKE 'd%' ORDER BY id")]
            finally:
                await pool.close()
            return nodes, ids, due

    nodes, sealed, due = asyncio.run(run())
    assert "Index Scan feed_entries_unsealed" in nodes, nodes  # not the primary key from the first entry
    assert not any(n.startswith(("Seq Scan", "Sort")) for n in nodes), nodes
    assert sorted(sealed) == due[:100]  # the first due entries, none of the held ones
