"""Monthly partitions (deploy/migrations/030_partitions.sql): exactly once per key across a month's boundary, a
populated database converted with every row kept and its sealed feed still immutable, the hot paths' plans, the
default partition watched, and a month detached only with a verified archive that holds it row for row."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import shutil
import subprocess
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import msgspec
import pytest

from core import campaign as campaigns
from core import contract, partitions
from core.campaign import Risk
from core.settings import Settings
from core.stores import open_pool
from deploy.devstack import VENV_BIN
from gateway.migrate import MIGRATIONS, migrate
from gateway.parse import as_invoice
from gateway.reconcile import LEDGER
from gateway.status import EVENTS, INVOICE
from gateway.validate import check
from loadtest import sample
from tests.integration.helpers import scratch_dsn
from workers import risk
from workers.judge import Judgement
from workers.reverify import DUE_ENTRIES
from workers.seal import FEED, seal_all
from workers.sink import Judged, prepare, write

CST = ZoneInfo("Asia/Shanghai")
BOUNDARY = dt.datetime(2026, 2, 1, tzinfo=CST)  # a month no other test writes
DETACHED = dt.date(2026, 4, 1)  # idem


def queued(rng: random.Random, at: dt.datetime, key: str | None = None) -> contract.Queued:
    camp = campaigns.load("tests/campaigns/hefei-2026-sharded.toml")
    q = check(as_invoice(sample.invoice(rng)), camp, "demo-channel", "k", int(at.timestamp() * 1000))
    q = contract.unpack(msgspec.msgpack.encode(q))
    return q if key is None else msgspec.structs.replace(q, key=key, number=key)


async def with_pool(settings: Settings, body: Any, dsn: str | None = None) -> Any:
    pool = await asyncpg.create_pool(dsn or settings.stores.database_url, min_size=1, max_size=2, init=prepare)
    try:
        return await body(pool)
    finally:
        await pool.close()


async def month_partitions(pool: asyncpg.Pool, month: dt.date) -> None:
    await pool.execute("SELECT create_partition(p, p.tbl, $1) FROM partitioned p", month)


def test_a_key_sent_on_both_sides_of_a_months_end_is_written_once(settings: Settings, sql: Any) -> None:
    rng = random.Random(1601)
    before, after = BOUNDARY - dt.timedelta(milliseconds=100), BOUNDARY + dt.timedelta(milliseconds=100)
    first = queued(rng, before)
    again = msgspec.structs.replace(first, accepted_at_ms=int(after.timestamp() * 1000))

    async def run(pool: asyncpg.Pool) -> list[int]:
        for month in (dt.date(2026, 1, 1), dt.date(2026, 2, 1)):
            await month_partitions(pool, month)
        one = await write(pool, [Judged(first, Judgement("verified"), before)], [])
        two = await write(pool, [Judged(again, Judgement("verified"), after)], [])
        return [one, two]

    assert asyncio.run(with_pool(settings, run)) == [1, 0]
    assert sql("SELECT count(*) FROM invoices WHERE key = $1", first.key)[0][0] == 1
    assert sql("SELECT tableoid::regclass::text FROM invoices WHERE key = $1", first.key)[0][0] == "invoices_p2026_01"
    assert sql("SELECT count(*) FROM feed_entries WHERE key = $1 AND kind = 'add'", first.key)[0][0] == 1
    assert sql("SELECT count(*) FROM outbox WHERE subject = $1", first.key)[0][0] == 1


def test_rows_of_a_month_without_its_partition_land_in_the_default_one_and_are_counted(
    settings: Settings, sql: Any
) -> None:
    far = dt.datetime(2025, 3, 15, tzinfo=CST)  # no partition: before the campaign
    q = queued(random.Random(1602), far)

    async def run(pool: asyncpg.Pool) -> list[partitions.Health]:
        await write(pool, [Judged(q, Judgement("ineligible", "outside_campaign_window"), None)], [])
        async with pool.acquire() as conn:
            found = await partitions.health(conn)
            await conn.execute("DELETE FROM invoices_default WHERE key = $1", q.key)  # as the runbook moves them
            await conn.execute("DELETE FROM invoice_events_default WHERE key = $1", q.key)
            return found

    found = {h.table: h for h in asyncio.run(with_pool(settings, run))}
    assert found["invoices"].default_rows >= 1 and found["invoice_events"].default_rows >= 1
    assert all(h.months_ahead >= 2 for h in found.values()), found


def test_hot_paths_read_only_the_months_they_need(settings: Settings) -> None:
    """Three months of invoices: a status lookup runs one month's partition, the sealer's update the months of its
    keys, the change feed each month's index in order, a day's reconciliation the day's month of the invoices, and
    re-verification's look for due entries each due invoice by its key: with none due, no invoices at all (it had
    sorted them all to merge them with an empty lease, 246 ms a call in a 100,000-invoice burst, or planned to
    scan them all)."""

    async def run(conn: asyncpg.Connection) -> dict[str, str]:
        for month in (dt.date(2026, 6, 1), dt.date(2026, 7, 1), dt.date(2026, 8, 1)):
            await conn.execute("SELECT create_partition(p, p.tbl, $1) FROM partitioned p", month)
        await conn.execute(
            "INSERT INTO invoices (key, channel, number, code, issue_date, amount_fen, seller_tax_id, seller_name,"
            " category, person, user_ref, device_ref, status, accepted_at, updated_at)"
            " SELECT g::text, 'c', g::text, '', '2026-06-01', 100, 's' || (g % 500), '', '', 'p', 'u',"
            " 'd' || (g % 900),"
            " 'verified', '2026-06-01 00:00+08'::timestamptz + g * interval '1 minute', now()"
            " FROM generate_series(1, 120000) g"
        )
        await conn.execute("INSERT INTO invoice_keys SELECT key, accepted_at FROM invoices")
        await conn.execute(
            "INSERT INTO accepted_ledger SELECT (accepted_at AT TIME ZONE 'Asia/Shanghai')::date, key FROM invoices"
        )
        await conn.execute("ANALYZE")
        # Entries written since the last ANALYZE, as during a burst: the planner guesses how many are due.
        await conn.execute(
            "INSERT INTO feed_entries (key, kind, body, ready_at) SELECT key, 'add', '', accepted_at FROM invoices"
        )
        keys = [str(k) for k in range(50000, 50500)]  # July's
        tx = conn.transaction()  # the sealer's update is explained with ANALYZE: undone after
        await tx.start()
        plans = {
            "status": await explain(conn, INVOICE, "70000"),
            "seal": await explain(conn, FEED, 1, dt.datetime.now(dt.UTC), keys),
            "events": await explain(conn, EVENTS, "70000", "c", dt.datetime(2026, 7, 18, tzinfo=CST)),
            "reconcile": await explain(conn, LEDGER, DAY.date(), DAY, DAY + dt.timedelta(days=1)),
            "reverify": await explain(conn, DUE_ENTRIES, 100, 60.0),
        }
        await tx.rollback()
        return plans

    plans = asyncio.run(scratch(settings, "partition_plans", run))
    executed = {name: [n for n in plan.splitlines() if ran(n)] for name, plan in plans.items()}
    assert [n.split(" on ")[1].split()[0] for n in executed["status"]] == ["invoices_p2026_07"], plans["status"]
    assert {n.split(" on ")[1].split()[0] for n in executed["seal"]} <= {"invoices_p2026_07"}, plans["seal"]
    assert "Seq Scan on invoices_p2026_07" not in plans["seal"], plans["seal"]
    assert "invoice_events_p2026_06" not in plans["events"], plans["events"]
    assert {n.split(" on ")[1].split()[0] for n in executed["reconcile"]} == {"invoices_p2026_07"}, plans["reconcile"]
    populated = [n for n in plans["reverify"].splitlines() if "Seq Scan on invoices_p2026_0" in n]
    assert executed["reverify"] == [] and populated == [], plans["reverify"]


def test_pooled_sessions_run_without_jit(settings: Settings) -> None:
    """Every pool's sessions have JIT off (core/stores.py SESSION_SETTINGS), whatever the server's default: with it,
    PostgreSQL spent 1,791 µs an invoice of a cached burst, 1,030 without (benchmarks/README.md)."""

    async def run() -> tuple[str, str]:
        conn = await asyncpg.connect(settings.stores.database_url)  # a session of the server's own settings
        pool = await open_pool(settings.stores, 2, timed=True)
        try:
            return await conn.fetchval("SHOW jit"), await pool.fetchval("SHOW jit")
        finally:
            await pool.close()
            await conn.close()

    server, pooled = asyncio.run(run())
    assert (server, pooled) == ("on", "off")


DAY = dt.datetime(2026, 7, 18, tzinfo=CST)  # a day of July's invoices, reconciled


def test_the_risk_rules_count_only_the_months_of_their_window(settings: Settings) -> None:
    """Invoices of one device and seller over the last five months: the rules' per-device and per-seller scans
    (a 20-day window) run only the partitions of the window's months (and the empty months made ahead); the
    older ones are pruned when the query runs."""
    now = dt.datetime.now(CST)
    window = partitions.add_months(now.date().replace(day=1), -4), (now - dt.timedelta(days=20)).date()
    recent = {partitions.partition_name("invoices", m) for m in {window[1].replace(day=1), now.date().replace(day=1)}}

    class Explained:  # holds()'s connection: its query explained instead of answered
        plan = ""

        def __init__(self, conn: asyncpg.Connection) -> None:
            self.conn = conn

        async def fetch(self, query: str, *args: Any) -> list[Any]:
            self.plan = await explain(self.conn, query, *args)
            return []

    async def run(conn: asyncpg.Connection) -> str:
        for n in range(5):
            month = partitions.add_months(window[0], n)
            await conn.execute("SELECT create_partition(p, p.tbl, $1) FROM partitioned p", month)
        await conn.execute(
            "INSERT INTO invoices (key, channel, number, code, issue_date, amount_fen, seller_tax_id, seller_name,"
            " category, person, user_ref, device_ref, status, accepted_at, updated_at)"
            " SELECT g::text, 'c', g::text, '', $1, 100, 's' || (g % 50), '', '', 'p' || g, 'u', 'd' || (g % 90),"
            " 'eligible', $2::timestamptz + g * interval '1 minute', now() FROM generate_series(1, 180000) g",
            window[0],
            dt.datetime.combine(window[0], dt.time(), CST),
        )
        await conn.execute("ANALYZE")
        explained = Explained(conn)
        q = msgspec.structs.replace(queued(random.Random(7), now), device_ref="d7", seller_tax_id="s7")
        await risk.holds(explained, [q], Risk(window_days=20))  # type: ignore[arg-type]
        return explained.plan

    plan = asyncio.run(scratch(settings, "partition_risk", run))
    counted = {n.split(" on ")[1].split("_device_ref")[0].split("_seller")[0] for n in plan.splitlines()
               if "accepted_at_idx" in n}  # fmt: skip
    older = [n for n in plan.splitlines() if any(f"invoices_p{m:%Y_%m}" in n for m in months_before(window))]
    assert counted == recent, plan
    # The reversal count goes by reversed_at (an old invoice reversed today counts): its partial index of the
    # reversed invoices is probed in every month, an empty probe for all but a mass reversal's months.
    assert older and all("seller_tax_id_reversed_at_idx" in n for n in older), plan


def months_before(window: tuple[dt.date, dt.date]) -> list[dt.date]:
    """The months from the first to the one before the window's start."""
    found, month = [], window[0]
    while month < window[1].replace(day=1):
        found.append(month)
        month = partitions.add_months(month, 1)
    return found


def ran(line: str) -> bool:
    """A scan of a month's invoices that ran (not pruned when the query ran)."""
    return "Scan" in line and " on invoices_p" in line and "never executed" not in line


async def explain(conn: asyncpg.Connection, query: str, *args: Any) -> str:
    rows = await conn.fetch("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) " + query, *args)
    return "\n".join(r[0] for r in rows)


async def scratch(settings: Settings, name: str, body: Any) -> Any:
    async with scratch_dsn(settings, name) as dsn:
        await migrate(dsn)
        conn = await asyncpg.connect(dsn)
        try:
            return await body(conn)
        finally:
            await conn.close()


POPULATE = [
    "INSERT INTO invoices (key, channel, number, code, issue_date, amount_fen, seller_tax_id, seller_name, category,"
    " person, user_ref, device_ref, status, reason, accepted_at, updated_at, batch_seq)"
    " SELECT g::text, 'c' || (g % 3), g::text, '', '2026-03-01', 100 + g, 's', '', 'catering', 'p' || g, 'u', 'd',"
    " CASE WHEN g % 2 = 0 THEN 'eligible' ELSE 'held' END, NULL,"
    " '2026-01-15 00:00+08'::timestamptz + g * interval '1 hour', now(), CASE WHEN g % 2 = 0 THEN 1 + g / 1000 END"
    " FROM generate_series(1, 3000) g",
    "INSERT INTO invoice_events (key, channel, status, at) SELECT key, channel, 'accepted', accepted_at FROM invoices",
    "INSERT INTO invoice_events (key, channel, status, at) SELECT key, channel, status, updated_at FROM invoices",
    "INSERT INTO feed_batches VALUES (1, now(), 2, repeat('0', 64), 'a'), (2, now(), 2, 'a', 'b'),"
    " (3, now(), 2, 'b', 'c'), (4, now(), 1, 'c', 'd')",
    "INSERT INTO feed_entries (key, kind, body, batch_seq, ready_at)"
    " SELECT key, 'add', '{\"key\":\"' || key || '\"}', batch_seq, accepted_at FROM invoices"
    " WHERE batch_seq IS NOT NULL",
    "INSERT INTO feed_entries (key, kind, body) VALUES ('pending', 'add', '{}')",
    "INSERT INTO outbox (destination, subject, kind, record, created_at)"
    " SELECT 'national', key, 'invoice', '{}', accepted_at FROM invoices",
    "INSERT INTO accepted_ledger SELECT (accepted_at AT TIME ZONE 'Asia/Shanghai')::date, key FROM invoices",
    "INSERT INTO duplicate_uploads SELECT key, 'other', accepted_at FROM invoices WHERE key::int % 7 = 0",
    "INSERT INTO report_distinct SELECT '2026-02-01'::date + (g % 60), 'p', '', '', g FROM generate_series(1, 500) g",
    "INSERT INTO tally_parts SELECT 'r' || g, '0', '2026-03-01' FROM generate_series(1, 50) g",
    "INSERT INTO reviews (key, decision, reviewer, note) SELECT key, 'reject', 'a', 'n' FROM invoices LIMIT 5",
]
TABLES = ("invoices", "invoice_events", "feed_batches", "feed_entries", "outbox", "accepted_ledger",
          "duplicate_uploads", "report_distinct", "tally_parts", "reviews")  # fmt: skip


CHANGES = (
    "UPDATE feed_entries SET body = 'x' WHERE key = '2'",
    "DELETE FROM feed_entries WHERE key = '4'",
    "UPDATE feed_batches SET sha256 = 'x' WHERE seq = 1",
)


def test_a_populated_database_is_converted_with_every_row_and_its_sealed_feed_stays_immutable(
    settings: Settings, tmp_path: Path
) -> None:
    for path in MIGRATIONS.glob("*.sql"):
        if path.name < "030":
            shutil.copy(path, tmp_path / path.name)

    columns: dict[str, str] = {}

    async def fingerprints(conn: asyncpg.Connection) -> dict[str, str]:
        """Each table's rows, over the columns it had before the conversion (later migrations add some)."""
        for t in TABLES:
            if t not in columns:
                names = await conn.fetch(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = $1"
                    " ORDER BY ordinal_position",
                    t,
                )
                columns[t] = ", ".join(f'"{r[0]}"' for r in names)
        return {
            t: await conn.fetchval(
                f"SELECT count(*) || ':' || md5(string_agg(r::text, '|' ORDER BY r::text))"
                f" FROM (SELECT {columns[t]} FROM {t}) r"
            )
            for t in TABLES
        }

    async def run() -> tuple[dict[str, str], dict[str, str], list[str], str]:
        async with scratch_dsn(settings, "partition_convert") as dsn:
            await migrate(dsn, tmp_path)
            conn = await asyncpg.connect(dsn)
            try:
                for statement in POPULATE:
                    await conn.execute(statement)
                before = await fingerprints(conn)
                await migrate(dsn)
                after = await fingerprints(conn)
                refused = []
                for change in CHANGES:
                    with pytest.raises(asyncpg.RaiseError) as err:
                        await conn.execute(change)
                    refused.append(str(err.value))
                await conn.execute("UPDATE feed_entries SET batch_seq = 4 WHERE key = 'pending'")  # unsealed: may
                kept = await conn.fetchval("SELECT count(*) FROM invoice_keys") == 3000
                new_id = await conn.fetchval(
                    "INSERT INTO invoice_events (key, channel, status, at) VALUES ('n', 'c', 'accepted', now())"
                    " RETURNING id"
                )
                months = await conn.fetch("SELECT DISTINCT tableoid::regclass::text AS p FROM invoices ORDER BY 1")
                assert kept and new_id == 6001
                return before, after, refused, ",".join(r["p"] for r in months)
            finally:
                await conn.close()

    before, after, refused, months = asyncio.run(run())
    assert after == before
    assert refused == ["sealed feed data cannot change"] * 3
    assert months == "invoices_p2026_01,invoices_p2026_02,invoices_p2026_03,invoices_p2026_04,invoices_p2026_05"


def command(stack: Any, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(VENV_BIN / argv[0]), *argv[1:]], env=stack.env, capture_output=True, text=True)


def test_a_month_is_detached_only_with_a_verified_archive_holding_it_and_kept_for_the_retention_period(
    stack: Any, settings: Settings, sql: Any, tmp_path: Path
) -> None:
    rng = random.Random(1603)
    at = dt.datetime(2026, 4, 10, 12, tzinfo=CST)
    batch = [queued(rng, at + dt.timedelta(minutes=i)) for i in range(20)]

    async def run(pool: asyncpg.Pool) -> None:
        await month_partitions(pool, DETACHED)
        await write(pool, [Judged(q, Judgement("ineligible", "below_minimum"), at) for q in batch], [])
        await seal_all(pool, 1000)

    asyncio.run(with_pool(settings, run))
    # April's days are closed (as the workers' closing does, its report written), so the month is.
    sql("INSERT INTO report_days SELECT DISTINCT day, now(), '{}'::jsonb FROM report_daily WHERE day >= $1 AND day < $2"
        " ON CONFLICT DO NOTHING", DETACHED, dt.date(2026, 5, 1))  # fmt: skip
    first = command(stack, "gateway", "archive", "--month", "2026-04", "--out", str(tmp_path / "first"))
    assert first.returncode == 0, first.stderr
    assert command(stack, "gateway", "archive", "verify", str(tmp_path / "first")).returncode == 0
    sql("UPDATE invoices SET reason = 'changed' WHERE key = $1 AND accepted_at = $2", batch[0].key, at)
    refused = command(stack, "gateway", "archive", "detach", "--month", "2026-04")
    assert refused.returncode == 1 and "invoices changed since the archive was made" in refused.stderr
    second = command(stack, "gateway", "archive", "--month", "2026-04", "--out", str(tmp_path / "second"))
    assert second.returncode == 0, second.stderr
    done = command(stack, "gateway", "archive", "detach", "--month", "2026-04")
    assert done.returncode == 0, done.stderr
    assert "detached invoices_p2026_04" in done.stdout and "detached invoice_events_p2026_04" in done.stdout
    assert sql("SELECT count(*) FROM invoices WHERE key = $1", batch[1].key)[0][0] == 0
    assert sql("SELECT count(*) FROM invoices_p2026_04")[0][0] == 20  # a table of its own now
    kept = command(stack, "gateway", "archive", "drop", "--month", "2026-04")
    assert kept.returncode == 1 and "is kept until 2036-05-01 (10 years)" in kept.stderr
