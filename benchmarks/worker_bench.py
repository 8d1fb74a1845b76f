"""The workers against the raw COPY + upsert rate of the same rows, on the same PostgreSQL, in one run (issue 5).

    .venv/bin/python benchmarks/worker_bench.py [--invoices 100000] [--workers 2] [--batch 200] [--in-flight 3]
        [--pg-stats]

Starts its own Redis, PostgreSQL and simulator (latency 0 unless --median-ms) under .data/bench, then:

1. the limit: ``workers.sink.write`` (COPY into staging + the upsert, one transaction per batch) of N judged
   rows, from as many concurrent writers as there are workers, nothing else;
2. the pool: N invoices queued straight into the intake streams (as the gateway's script would, 100 per entry),
   drained by ``--workers`` burst worker processes (verify over HTTP, cache, judge, risk query, the same sink,
   XACK); the rate is over the span of commit times, and the wall time is reported beside it;
3. where the time goes: one worker in this process over N/4 more invoices, its per-stage time per invoice from
   ``worker_stage_duration_seconds``.

With ``--pg-stats`` PostgreSQL loads pg_stat_statements, and the cached drain's statements are reported: the
execution time of each, in µs an invoice, the dearest first.

Writes benchmarks/results/workers.json and workers.md and prints the table.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

import msgspec

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import bench_stack, save, statements, statements_reset  # noqa: E402
from core import keys  # noqa: E402
from core import settings as config  # noqa: E402
from core.contract import Queued  # noqa: E402
from core.settings import Settings, from_env  # noqa: E402

PACK = msgspec.msgpack.Encoder()
CACHED = "26344"
PER_ENTRY = 20  # invoices per stream entry (per upload request)
STAGES = ("cache", "verify", "risk", "sink", "settle")


def invoices(n: int, prefix: str) -> list[Queued]:
    """``n`` distinct eligible invoices; numbers end in 0, away from the sandbox's endings."""
    rng = random.Random(prefix)
    now_ms = int(time.time() * 1000)
    return [
        Queued(
            key=f"{prefix}{i:014d}0",
            number=f"{prefix}{i:014d}0",
            code="",
            issue_date="2026-03-01",
            amount_fen=rng.randrange(10_000, 200_000),
            seller_tax_id=f"91340104MA{rng.randrange(10**8):08d}",
            seller_name="合肥示例餐饮有限公司",
            category="catering",
            check_code="",
            person=f"{rng.getrandbits(256):064x}",
            user_ref=f"{rng.getrandbits(256):064x}",
            device_ref=f"{rng.getrandbits(256):064x}",
            buyer_ref=f"{rng.getrandbits(256):064x}",
            channel="demo-channel",
            accepted_at_ms=now_ms,
        )
        for i in range(n)
    ]


async def raw_limit(settings: Settings, rows: list[Queued], writers: int, batch: int) -> float:
    """Rows per second through the sink alone: COPY + upsert, ``writers`` transactions at a time."""
    import asyncpg

    from workers.judge import Judgement
    from workers.sink import Judged, prepare, write

    judged = [Judged(q, Judgement("verified"), None) for q in rows]
    chunks = [judged[i : i + batch] for i in range(0, len(judged), batch)]
    pool = await asyncpg.create_pool(settings.stores.database_url, min_size=writers, max_size=writers, init=prepare)
    try:
        queue = iter(chunks)

        async def writer() -> None:
            for chunk in queue:
                await write(pool, chunk, [])

        started = time.perf_counter()
        await asyncio.gather(*(writer() for _ in range(writers)))
        return len(rows) / (time.perf_counter() - started)
    finally:
        await pool.close()


async def enqueue(settings: Settings, rows: list[Queued]) -> None:
    """Queue the invoices into the intake stream, ``PER_ENTRY`` per entry, as accepted requests would."""
    from core.stores import open_redis
    from workers import stream

    redis = open_redis(settings.stores)
    try:
        await stream.ensure_groups(redis, 1)
        async with redis.pipeline(transaction=False) as pipe:
            for i in range(0, len(rows), PER_ENTRY):
                fields: dict[Any, Any] = {q.key: PACK.encode(q) for q in rows[i : i + PER_ENTRY]}
                fields.update({"~channel": "demo-channel", "~at": str(rows[i].accepted_at_ms)})
                pipe.xadd(keys.stream(0), fields)
            await pipe.execute()
    finally:
        await redis.aclose()


async def commit_span(settings: Settings, prefix: str) -> tuple[int, float]:
    import asyncpg

    conn = await asyncpg.connect(settings.stores.database_url)
    try:
        row = await conn.fetchrow(
            "SELECT count(*) AS n, extract(epoch FROM max(committed_at) - min(committed_at)) AS s"
            " FROM invoices WHERE key LIKE $1",
            prefix + "%",
        )
        assert row is not None
        return int(row["n"]), float(row["s"] or 0.0)
    finally:
        await conn.close()


async def precache(settings: Settings, rows: list[Queued]) -> None:
    """Put each invoice's verified answer in the cache, as if verified before: the run then asks no one."""
    from core.stores import open_redis
    from workers.verify import Cache, Verified

    redis = open_redis(settings.stores)
    try:
        cache = Cache(redis, 3600)
        for i in range(0, len(rows), 1000):
            answers = [(0, q.key, Verified(q.amount_fen, q.issue_date, "normal")) for q in rows[i : i + 1000]]
            await cache.put(answers)
    finally:
        await redis.aclose()


def pool_run(
    stack: Any, settings: Settings, workers: int, batch: int, n: int, prefix: str, in_flight: int
) -> dict[str, float]:
    """``workers`` burst worker processes drain ``n`` invoices; the rate over the span of their commits. With
    prefix 26344 every answer is cached beforehand: the pipeline's own rate, without the HTTP calls."""
    rows = invoices(n, prefix)
    if prefix == CACHED:
        asyncio.run(precache(settings, rows))
    asyncio.run(enqueue(settings, rows))
    env = {
        "GATEWAY_WORKER_BATCH": str(batch),
        "GATEWAY_INFLIGHT_GRACE_S": "0",
        "GATEWAY_WORKER_IN_FLIGHT": str(in_flight),
    }
    argv = [str(ROOT / ".venv" / "bin" / "gateway-worker"), "run", "--burst"]
    started = time.perf_counter()
    before = _reaped_cpu_s()
    procs = [stack._spawn(f"bench-worker-{i}", argv, env=env) for i in range(workers)]
    for p in procs:
        if p.wait(3600) != 0:
            raise RuntimeError(f"a bench worker exited with {p.returncode}: see {stack.logs}")
    wall = time.perf_counter() - started
    cpu = _reaped_cpu_s() - before  # the workers' own CPU, start-up and the final seal included
    done, span = asyncio.run(commit_span(settings, prefix))
    if done != n:
        raise RuntimeError(f"{done} of {n} invoices committed")
    return {
        "invoices_per_s": n / span,
        "wall_s": wall,
        "wall_invoices_per_s": n / wall,
        "worker_cpu_us_per_invoice": cpu / n * 1e6,
    }


def _reaped_cpu_s() -> float:
    """CPU (user + system) of this process's children that have exited: the burst workers once waited for."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def breakdown(settings: Settings, batch: int, n: int, in_flight: int) -> dict[str, float]:
    """One worker in this process: microseconds per invoice in each stage, and the rest (judging, decoding)."""
    from workers import metrics
    from workers.cli import run_worker

    rows = invoices(n, "26343")
    asyncio.run(enqueue(settings, rows))
    quick = config.replace(settings, worker_batch=batch, inflight_grace_s=0.0, worker_in_flight=in_flight)
    started = time.perf_counter()
    asyncio.run(run_worker(quick, burst=True, handle_signals=False))
    total = time.perf_counter() - started

    def spent(stage: str) -> float:
        return sum(
            s.value
            for m in metrics.STAGE_SECONDS.collect()
            for s in m.samples
            if s.name.endswith("_sum") and s.labels["stage"] == stage
        )

    per = {stage: spent(stage) / n * 1e6 for stage in STAGES}
    # The risk query runs while the tax service answers: its time is inside "verify" already.
    per["other"] = total / n * 1e6 - sum(v for stage, v in per.items() if stage != "risk")
    per["invoices_per_s"] = n / total
    return per


def _cpu(pool: dict[str, float]) -> str:
    return f"{pool['worker_cpu_us_per_invoice']:,.0f}" if "worker_cpu_us_per_invoice" in pool else "not measured"


def markdown(r: dict[str, Any]) -> str:
    b = r["breakdown_us_per_invoice"]
    lines = [
        f"N = {r['invoices']:,} invoices, {r['workers']} worker processes, batches of {r['batch']} entries of "
        f"{PER_ENTRY} invoices, {r.get('in_flight', 1)} in flight per worker, "
        f"simulator latency median {r.get('median_ms', 0):g} ms, p99 {r.get('p99_ms', 0):g} ms; "
        "2 cores shared by everything.",
        "",
        "| measure | value |",
        "| --- | --- |",
        f"| COPY + upsert alone ({r['workers']} writers) | {r['raw_rows_per_s']:,.0f} rows/s |",
        f"| worker pool (commit span) | {r['pool']['invoices_per_s']:,.0f} invoices/s |",
        f"| **pool / COPY + upsert** | **{r['ratio']:.0%}** (target ≥ 50%) |",
        f"| worker pool (wall, start-up included) | {r['pool']['wall_invoices_per_s']:,.0f} invoices/s |",
        f"| workers' CPU per invoice (start-up included) | {_cpu(r['pool'])} µs; every answer cached "
        f"{_cpu(r['pool_cached'])} µs |",
        f"| worker pool, every answer cached (no HTTP) | {r['pool_cached']['invoices_per_s']:,.0f} invoices/s "
        f"({r['ratio_cached']:.0%} of COPY + upsert) |",
        f"| one worker in-process | {b['invoices_per_s']:,.0f} invoices/s |",
        "",
        "Where one worker's time goes, µs per invoice (the risk query runs during verify, its time within it):",
        "",
        "| " + " | ".join([*STAGES, "other"]) + " |",
        "|" + " --- |" * (len(STAGES) + 1),
        "| " + " | ".join(f"{b[s]:.0f}" for s in (*STAGES, "other")) + " |",
    ]
    if (pg := r.get("pg_statements_cached")) is not None:
        lines += [
            "",
            "PostgreSQL's execution time in the cached drain (`--pg-stats`, pg_stat_statements): "
            f"{pg['us_per']:.0f} µs an invoice; the dearest statements:",
            "",
            "| statement (its start) | calls | µs an invoice |",
            "| --- | --- | --- |",
            *(f"| `{t['statement']}` | {t['calls']:,} | {t['us_per']:.0f} |" for t in pg["top"]),
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--invoices", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=25, help="stream entries per read (of PER_ENTRY invoices)")
    parser.add_argument("--median-ms", type=float, default=0.0, help="the simulator's median latency")
    parser.add_argument("--p99-ms", type=float, default=0.0, help="and its 99th percentile (≤ median: constant)")
    parser.add_argument("--in-flight", type=int, default=config.Worker().in_flight, help="batches in flight per worker")
    parser.add_argument(
        "--pg-stats",
        action="store_true",
        help="PostgreSQL's time per statement in the cached drain (pg_stat_statements)",
    )
    args = parser.parse_args()
    pg: dict[str, Any] | None = None
    with bench_stack(full=False, pg_stats=args.pg_stats) as stack:
        stack.env["GATEWAY_SIMULATOR_MEDIAN_MS"] = str(args.median_ms)
        stack.env["GATEWAY_SIMULATOR_P99_MS"] = str(args.p99_ms)
        stack.start_simulator()
        settings = from_env({k: v for k, v in stack.env.items() if k.startswith("GATEWAY_")})
        raw = asyncio.run(raw_limit(settings, invoices(args.invoices, "26341"), args.workers, args.batch * PER_ENTRY))
        pool = pool_run(stack, settings, args.workers, args.batch, args.invoices, "26342", args.in_flight)
        if args.pg_stats:
            asyncio.run(statements_reset(settings.stores.database_url))
        cached = pool_run(stack, settings, args.workers, args.batch, args.invoices, CACHED, args.in_flight)
        if args.pg_stats:
            pg = asyncio.run(statements(settings.stores.database_url, args.invoices))
        parts = breakdown(settings, args.batch, args.invoices // 4, args.in_flight)
    result = {
        "invoices": args.invoices,
        "workers": args.workers,
        "batch": args.batch,
        "in_flight": args.in_flight,
        "median_ms": args.median_ms,
        "p99_ms": args.p99_ms,
        "cores": os.cpu_count(),
        "raw_rows_per_s": raw,
        "pool": pool,
        "ratio": pool["invoices_per_s"] / raw,
        "pool_cached": cached,
        "ratio_cached": cached["invoices_per_s"] / raw,
        "breakdown_us_per_invoice": parts,
        **({"pg_statements_cached": pg} if pg is not None else {}),
    }
    save("workers", "Workers against COPY + upsert", result, markdown)


if __name__ == "__main__":
    main()
