"""The sealer at scale: its query reads the unsealed entries' index, not every entry ever sealed; and its update of
each invoice it feeds writes no index (a HOT update: migration 093)."""

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


FED = 400
HOT_UPDATED, HEAP_ONLY = 0x4000, 0x8000  # t_infomask2: the old version of a HOT update, and its new version


def test_the_sealer_updates_each_invoice_it_feeds_in_its_page_and_writes_no_index(settings: Settings) -> None:
    async def run() -> tuple[int, int, int]:  # eligible, heap-only versions, HOT-updated versions
        async with scratch_database(settings, "seal_hot") as conn:
            await conn.execute(
                "INSERT INTO invoice_keys (key, accepted_at) SELECT 'k' || g, now() FROM generate_series(1, $1) g", FED
            )
            await conn.execute(
                "INSERT INTO invoices (key, channel, number, code, issue_date, amount_fen, seller_tax_id, seller_name,"
                " category, person, user_ref, device_ref, status, accepted_at, updated_at)"
                " SELECT key, 'c', key, '', '2026-03-01', 100, 's' || (random() * 50)::int, '', 'catering',"
                " md5(key), 'u' || key, 'd' || key, 'verified', accepted_at, now() FROM invoice_keys",
            )
            await conn.execute("INSERT INTO feed_entries (key, kind, body) SELECT key, 'add', '{}' FROM invoice_keys")
            dsn = settings.stores.database_url.rsplit("/", 1)[0] + "/seal_hot"
            pool = await asyncpg.create_pool(dsn, min_size=1, max_size=1)
            try:
                assert await seal_once(pool, FED) == 1
            finally:
                await pool.close()
            await conn.execute("CREATE EXTENSION pageinspect")
            part = await conn.fetchval("SELECT tableoid::regclass::text FROM invoices LIMIT 1")
            flags = await conn.fetchrow(
                "SELECT count(*) FILTER (WHERE t_infomask2 & $2 <> 0) AS heap_only,"
                " count(*) FILTER (WHERE t_infomask2 & $3 <> 0) AS hot_updated"
                " FROM generate_series(0, pg_relation_size($1::regclass) / 8192 - 1) AS b,"
                " heap_page_items(get_raw_page($1::text, b::int))",
                part,
                HEAP_ONLY,
                HOT_UPDATED,
            )
            eligible = await conn.fetchval("SELECT count(*) FROM invoices WHERE status = 'eligible'")
            return eligible, flags["heap_only"], flags["hot_updated"]

    eligible, heap_only, hot_updated = asyncio.run(run())
    assert eligible == FED
    # Every invoice's new version is a heap-only tuple: no index entry points at it. (The old versions' flag
    # may be gone already, if a read pruned their page.)
    assert heap_only == FED, (heap_only, hot_updated)
