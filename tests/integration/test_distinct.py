"""The distinct merchants and consumers of the daily reports (core/rollup.py, count_distinct): recorded at the
finest scope only, counted in all four, each value once per scope and day, whatever the batches, and across a
day whose earlier values were recorded in every scope (as before migration 090)."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from collections import Counter, defaultdict

import asyncpg

from core import rollup
from core.rollup import ALL, Deltas
from core.settings import Settings
from tests.integration.helpers import scratch_database

DAYS = (dt.date(2026, 5, 1), dt.date(2026, 5, 2))
Eligible = tuple[dt.date, str, str, str, str]  # day, channel, industry, seller, person


def expected(invoices: list[Eligible]) -> Counter[tuple[dt.date, str, str, str]]:
    """Brute force: per day and scope, how many distinct sellers and persons."""
    seen: dict[tuple[dt.date, str, str, str], set[str]] = defaultdict(set)
    for day, channel, industry, seller, person in invoices:
        for c, i in ((ALL, ALL), (channel, ALL), (ALL, industry), (channel, industry)):
            seen[(day, c, i, "merchants")].add(seller)
            seen[(day, c, i, "consumers")].add(person)
    return Counter({cell: len(values) for cell, values in seen.items()})


async def counted(conn: asyncpg.Connection) -> Counter[tuple[dt.date, str, str, str]]:
    rows = await conn.fetch(
        "SELECT day, channel, industry, metric, count FROM report_daily WHERE metric IN ('merchants', 'consumers')"
    )
    return Counter({(r["day"], r["channel"], r["industry"], r["metric"]): r["count"] for r in rows})


async def as_before_090(conn: asyncpg.Connection, invoices: list[Eligible]) -> None:
    """Record ``invoices`` as the sealer did before: a row in each of the four scopes, the counts from them."""
    rows = {
        (day, kind, c, i, value)
        for day, channel, industry, seller, person in invoices
        for kind, value in (("m", rollup._hash64(seller)), ("p", rollup._person64(person)))
        for c, i in ((ALL, ALL), (channel, ALL), (ALL, industry), (channel, industry))
    }
    await conn.executemany(
        "INSERT INTO report_distinct (day, kind, channel, industry, value) VALUES ($1, $2, $3, $4, $5)", rows
    )
    deltas = Deltas()
    for (day, c, i, metric), n in expected(invoices).items():
        deltas.add(day, c, i, metric, "", n)
    await rollup.apply(conn, deltas)


def test_each_value_counts_once_per_scope_and_day_whatever_the_batches(settings: Settings) -> None:
    rng = random.Random(90)
    invoices: list[Eligible] = [
        (
            rng.choice(DAYS),
            rng.choice(("ch1", "ch2", "ch3")),
            rng.choice(("catering", "零售", "other")),
            f"9134{rng.randrange(12):014d}",
            # persons as the sink keeps them (64 hex digits), and one that is not hex (hashed instead)
            f"{rng.randrange(1, 21) << 200:064x}" if rng.random() < 0.95 else "not-hex",
        )
        for _ in range(600)
    ]

    async def go() -> None:
        async with scratch_database(settings, "distinct_scopes") as conn:
            await as_before_090(conn, invoices[:100])  # the day began before the upgrade
            at = 100
            while at < len(invoices):
                batch = invoices[at : at + rng.randrange(1, 80)]
                at += len(batch)
                async with conn.transaction():
                    deltas = Deltas()
                    await rollup.count_distinct(conn, deltas, batch + batch[:3])  # a value twice in a batch
                    await rollup.apply(conn, deltas)
            assert await counted(conn) == expected(invoices)
            finest = await conn.fetchval("SELECT count(*) FROM report_distinct WHERE channel <> '' AND industry <> ''")
            by_value = {(d, k, c, i, v) for d, c, i, s, p in invoices for k, v in (("m", s), ("p", p))}
            assert finest == len(by_value)  # one row a value and finest scope, none twice
            # A batch sealed again (as if counted twice) adds nothing: its values are known in every scope.
            async with conn.transaction():
                deltas = Deltas()
                await rollup.count_distinct(conn, deltas, invoices[-50:])
                assert not deltas

    asyncio.run(go())


def test_a_batch_looks_its_values_up_by_key_not_by_scanning_the_day(settings: Settings) -> None:
    """200,000 values recorded on a day: a 1,000-value batch reads them through the key (it leads with the value),
    and only the day's month."""

    async def go() -> str:
        async with scratch_database(settings, "distinct_plan") as conn:
            for month in (dt.date(2026, 5, 1), dt.date(2026, 6, 1)):
                await conn.execute("SELECT create_partition(p, p.tbl, $1) FROM partitioned p", month)
            await conn.execute(
                "INSERT INTO report_distinct SELECT d, k, 'ch' || (g % 3), 'catering', g"
                " FROM generate_series(1, 100000) g, unnest(ARRAY['2026-05-01', '2026-06-01']::date[]) d,"
                " unnest(ARRAY['m', 'p']) k"
            )
            await conn.execute("ANALYZE report_distinct")
            values = list(range(50_000, 51_000))
            rows = await conn.fetch(
                "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) " + rollup.KNOWN_DISTINCT,
                [DAYS[0]] * len(values),
                ["p"] * len(values),
                values,
            )
            return "\n".join(r[0] for r in rows)

    plan = asyncio.run(go())
    ran = [
        line.split("->")[-1].split(" on ")[0].strip()  # the scan and its index, without the alias
        for line in plan.splitlines()
        if "Scan" in line and "never executed" not in line
    ]
    assert ran == ["Function Scan", "Index Only Scan using report_distinct_p2026_05_pkey"], plan
