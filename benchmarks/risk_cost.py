"""What the risk rules cost a batch as the invoices pile up (workers/risk.py ``holds``: one query a batch): batches
of 2,500 fresh invoices from the same 50 sellers, each seller with many invoices of the window already committed,
as in a burst. µs of wall time an invoice, median of the rounds, at each size of ``invoices``.

    .venv/bin/python benchmarks/risk_cost.py [--sizes 100000,1000000] [--rounds 10]

Each round's batch is committed after it is timed (through the sink, as the workers do), so the next one reads
figures that include it. The committed invoices are written with SQL, spread over the last three days, and the
sellers' kept figures (migration 091) made again from them (``risk.rebuild``).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import bench_stack
from benchmarks.worker_bench import invoices
from core import campaign as campaigns
from core.contract import Queued
from core.settings import from_env
from core.stores import open_pool
from workers import risk, sink
from workers.judge import Judgement

SELLERS = 50
BATCH = 2500

PARTITIONS = "SELECT create_partition(p, p.tbl, $1::date) FROM partitioned p"
LOAD = """
INSERT INTO invoices (key, channel, number, code, issue_date, amount_fen, seller_tax_id, seller_name, category,
    person, user_ref, device_ref, status, reason, accepted_at, updated_at)
SELECT k, 'channel-' || (g % 7), k, '', current_date, 10000 + g % 900000,
       '9134010' || lpad((g % $2::int)::text, 11, '0'), '合肥示例餐饮有限公司', 'catering',
       md5('p' || g), md5('u' || g), md5('d' || g), 'eligible', NULL, t, t
FROM (
    SELECT g, now() - (g * (259200.0 / $1)) * interval '1 second' AS t
    FROM generate_series($3::bigint, $3::bigint + $1::bigint - 1) g
) s,
     LATERAL (SELECT '2633' || lpad(g::text, 16, '0') AS k) kk
"""


def batch(rng: random.Random, round_: int) -> list[Queued]:
    """``BATCH`` fresh invoices (each of a new person and device, as ``worker_bench`` makes them) spread over the
    loaded sellers, some of them high-value; ``round_`` (below 1,000) keeps their keys apart."""
    return [
        msgspec.structs.replace(q, seller_tax_id=f"9134010{rng.randrange(SELLERS):011d}", amount_fen=amount)
        for q in invoices(BATCH, f"27{round_:03d}")
        for amount in [rng.choice((12_850, 600_000))]
    ]


async def run(settings: Any, sizes: list[int], rounds: int) -> None:
    rules = campaigns.load(settings.campaign_file).risk
    pool = await open_pool(settings.stores, 2, timed=False, init=sink.prepare)
    await pool.execute(PARTITIONS, (dt.date.today().replace(day=1) - dt.timedelta(days=1)).replace(day=1))
    rng = random.Random(7)
    loaded = done = 0
    print(f"risk rules, {BATCH:,}-invoice batches of {SELLERS} sellers; µs of wall time an invoice")
    for size in sizes:
        await pool.execute(LOAD, size - loaded, SELLERS, loaded + 1)
        loaded = size
        await pool.execute("ANALYZE invoices")
        if hasattr(risk, "rebuild"):  # the sellers' kept figures (migration 091); absent before it (31dd9e3)
            await risk.rebuild(pool, rules)
        times = []
        for _ in range(rounds):
            made = batch(rng, done)
            done += 1
            started = time.perf_counter()
            await risk.holds(pool, made, rules)
            times.append((time.perf_counter() - started) / BATCH * 1e6)
            await sink.write(pool, [sink.Judged(q, Judgement("verified"), None) for q in made], [])
        median, low, high = statistics.median(times), min(times), max(times)
        print(f"  {size:>10,} committed: median {median:,.1f} µs (rounds {low:,.1f} to {high:,.1f})", flush=True)
    await pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100000,1000000", help="committed invoices, comma-separated, growing")
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    with bench_stack(full=False, name="risk") as stack:
        env = {k: v for k, v in stack.env.items() if k.startswith("GATEWAY_")}
        asyncio.run(run(from_env(env), sizes, args.rounds))


if __name__ == "__main__":
    main()
