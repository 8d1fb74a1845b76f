"""What the workers' committed-before check costs (workers/sink.py ``committed``: one query a batch, so that a batch
delivered again after its commit is not verified again): a 2,500-key batch of fresh keys looked up in
``invoice_keys`` holding 1 M committed keys, 30 times; µs of wall time an invoice.

    .venv/bin/python benchmarks/committed_cost.py
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import bench_stack
from core.settings import from_env
from core.stores import open_pool
from workers import sink


async def run(settings: Any) -> None:
    pool = await open_pool(settings.stores, 2, timed=False)
    await pool.execute(
        "INSERT INTO invoice_keys SELECT '2634' || lpad(g::text, 16, '0'), now() FROM generate_series(1, 1000000) g"
    )
    await pool.execute("ANALYZE invoice_keys")
    times = []
    for r in range(30):
        keys = [f"2639{r:04d}{i:012d}" for i in range(2500)]  # absent, as in a fresh batch
        t = time.perf_counter()
        found = await sink.committed(pool, keys)
        times.append((time.perf_counter() - t) / 2500 * 1e6)
        assert not found
    present = [f"2634{i:016d}" for i in range(1, 2501)]
    assert len(await sink.committed(pool, present)) == 2500
    median, low, high = statistics.median(times), min(times), max(times)
    print(
        f"µs an invoice (wall; 2,500 keys a batch, 1 M committed): median {median:.1f}, rounds {low:.1f} to {high:.1f}"
    )
    await pool.close()


if __name__ == "__main__":
    with bench_stack(full=False, name="committed") as stack:
        asyncio.run(run(from_env({k: v for k, v in stack.env.items() if k.startswith("GATEWAY_")})))
