"""The sealer alone: how fast pending feed entries become sealed batches (one sealer at a time, by design).

    .venv/bin/python benchmarks/seal_bench.py [--invoices 30000] [--rounds 2] [--batch 1000]

On a stack of its own (Redis, PostgreSQL), each round writes ``--invoices`` verified invoices with the workers'
sink (2 writers, 500-row transactions; their feed entries pending) and then times ``workers.seal.seal_all``
with batches of ``--batch`` entries (``GATEWAY_SEAL_MAX_ENTRIES``'s default), as the workers run it: the update
that makes the invoices eligible, their events, the daily figures with the distinct merchants and consumers,
the outbox records, the batch's hash. Reports entries sealed a second and this process's CPU per entry, and the
share of the invoices' updates that were HOT (no index written), the median of the rounds; and the invoices'
heap and indexes, bytes an invoice after the last round. Every invoice is eligible and of a new consumer, the
sealer's dearest case. Writes benchmarks/results/seal.json and seal.md.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import bench_stack, save  # noqa: E402
from benchmarks.worker_bench import invoices, raw_limit  # noqa: E402
from core.settings import Settings, Worker, from_env  # noqa: E402


async def seal_round(settings: Settings, batch: int) -> dict[str, float]:
    from core import campaign as campaigns
    from core.rollup import Rollup
    from core.stores import open_pool
    from workers import seal

    pool = await open_pool(settings.stores, 2, timed=False)
    try:
        rollup = Rollup.of(campaigns.load(settings.campaign_file))
        before = await pool.fetchval("SELECT count(*) FROM feed_entries WHERE batch_seq IS NOT NULL")
        updates = await pool.fetchrow(INVOICE_UPDATES)
        started, cpu = time.perf_counter(), time.process_time()
        await seal.seal_all(pool, batch, rollup)
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        after = await pool.fetchval("SELECT count(*) FROM feed_entries WHERE batch_seq IS NOT NULL")
    finally:
        await pool.close()
    sealed = after - before
    pool = await open_pool(settings.stores, 1, timed=False)
    try:
        await asyncio.sleep(1.0)  # the sealer's connections report their counts as they close
        done = await pool.fetchrow(INVOICE_UPDATES)
        sizes = await pool.fetchrow(INVOICE_SIZES)
    finally:
        await pool.close()
    assert updates is not None and done is not None and sizes is not None
    return {
        "sealed": sealed,
        "entries_per_s": sealed / wall,
        "cpu_us_per_entry": cpu / sealed * 1e6,
        "hot_share": (done["hot"] - updates["hot"]) / max(1, done["upd"] - updates["upd"]),
        "heap_bytes": int(sizes["heap"]),
        "index_bytes": int(sizes["indexes"]),
    }


# The invoices' updates (their partitions summed) and how many were HOT (no index written: migration 093).
INVOICE_UPDATES = """
SELECT coalesce(sum(n_tup_upd), 0)::bigint AS upd, coalesce(sum(n_tup_hot_upd), 0)::bigint AS hot
FROM pg_stat_user_tables WHERE relid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = 'invoices'::regclass)
"""
INVOICE_SIZES = """
SELECT sum(pg_relation_size(inhrelid))::bigint AS heap, sum(pg_indexes_size(inhrelid))::bigint AS indexes
FROM pg_inherits WHERE inhparent = 'invoices'::regclass
"""


def markdown(r: dict[str, Any]) -> str:
    rounds = r["rounds"]
    return (
        f"{r['invoices']:,} eligible invoices of new consumers a round, sealed in {r['batch']:,}-entry batches by "
        f"`workers.seal.seal_all`; {len(rounds)} rounds.\n\n"
        "| measure | median | rounds |\n| --- | --- | --- |\n"
        f"| entries sealed a second | {r['entries_per_s']:,.0f} | "
        + " / ".join(f"{x['entries_per_s']:,.0f}" for x in rounds)
        + " |\n"
        f"| the sealer's own CPU per entry (this process) | {r['cpu_us_per_entry']:.0f} µs | "
        + " / ".join(f"{x['cpu_us_per_entry']:.0f}" for x in rounds)
        + " |\n"
        f"| the invoices' updates that were HOT | {r['hot_share']:.0%} | "
        + " / ".join(f"{x['hot_share']:.0%}" for x in rounds)
        + " |\n"
        f"| the invoices' heap / indexes, bytes an invoice (median: after the last round) | "
        f"{r['heap_per']:,.0f} / {r['indexes_per']:,.0f} | "
        + " / ".join(
            f"{x['heap_bytes'] / x['invoices']:,.0f} / {x['index_bytes'] / x['invoices']:,.0f}" for x in rounds
        )
        + " |\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--invoices", type=int, default=30_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch", type=int, default=Worker().seal_max_entries, help="entries a sealed batch")
    args = parser.parse_args()
    rounds = []
    with bench_stack(full=False, name="seal") as stack:
        settings = from_env({k: v for k, v in stack.env.items() if k.startswith("GATEWAY_")})
        for i in range(args.rounds):
            asyncio.run(raw_limit(settings, invoices(args.invoices, f"2635{i}"), 2, 500))
            rounds.append({**asyncio.run(seal_round(settings, args.batch)), "invoices": args.invoices * (i + 1)})
    for r in rounds:
        if r["sealed"] != args.invoices:
            raise RuntimeError(f"{r['sealed']:,} of {args.invoices:,} entries sealed")
    result = {
        "invoices": args.invoices,
        "batch": args.batch,
        "rounds": rounds,
        "entries_per_s": statistics.median(r["entries_per_s"] for r in rounds),
        "cpu_us_per_entry": statistics.median(r["cpu_us_per_entry"] for r in rounds),
        "hot_share": statistics.median(r["hot_share"] for r in rounds),
        "heap_per": rounds[-1]["heap_bytes"] / rounds[-1]["invoices"],
        "indexes_per": rounds[-1]["index_bytes"] / rounds[-1]["invoices"],
    }
    save("seal", "The sealer alone", result, markdown)


if __name__ == "__main__":
    main()
