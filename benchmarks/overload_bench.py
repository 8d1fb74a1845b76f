"""Overload and fairness, on the dev stack, in one run (issue 4's figures).

    .venv/bin/python benchmarks/overload_bench.py [--seconds 6] [--invoices 20]

Starts its own stack (Redis, PostgreSQL, simulator, gunicorn with 2 processes, 1 worker) under .data/bench,
then with benchmarks/loadgen.py (separate processes, its CPU reported):

1. capacity: closed loop, 8 requests in flight, accepted invoices/s;
2. overload: open loop at 1x, 2x, 3x, 4x, 5x of that capacity (in requests/s): goodput (accepted
   invoices/s), p99 latency of the admitted (202) requests, every status seen, gateway RSS before and after;
3. fairness: channel B alone at 30% of capacity, then again while channel A offers 10x its share;
4. the rate-limit check's cost: time of the limits script call for one request, beside a PING.

Writes benchmarks/results/overload.json and overload.md and prints the table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
LOADGEN = ROOT / "benchmarks" / "loadgen.py"

from benchmarks.common import bench_stack, save  # noqa: E402


def generate(
    url: str, client: str, seconds: float, invoices: int, out: Path, rate: float = 0.0, concurrency: int = 8
) -> subprocess.Popen[bytes]:
    argv = [
        sys.executable,
        str(LOADGEN),
        url,
        client,
        f"{client}-secret",
        "--seconds",
        str(seconds),
        "--invoices",
        str(invoices),
        "--out",
        str(out),
    ]
    argv += ["--rate", str(rate)] if rate else ["--concurrency", str(concurrency)]
    return subprocess.Popen(argv)


def summarize(out: Path, seconds: float) -> dict[str, Any]:
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    cpu = lines[-1]["cpu_s"]
    rows = [r for r in lines[:-1] if r[0] < seconds]  # requests started inside the window
    admitted = sorted(r[2] for r in rows if r[1] == 202)
    return {
        "offered_rps": len(rows) / seconds,
        "admitted_rps": sum(1 for r in rows if r[1] == 202) / seconds,
        "goodput": sum(r[3] for r in rows) / seconds,
        "p50_ms": 1000 * admitted[len(admitted) // 2] if admitted else None,
        "p99_ms": 1000 * admitted[min(len(admitted) - 1, int(len(admitted) * 0.99))] if admitted else None,
        "statuses": {str(s): sum(1 for r in rows if r[1] == s) for s in sorted({r[1] for r in rows})},
        "generator_cores": cpu / seconds,
    }


def gateway_rss_kb(stack: Any) -> int:
    """RSS of the gunicorn master and its workers."""
    proc = next(p for n, p in stack.procs if n == "gateway")
    pids = [
        proc.pid,
        *map(int, subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()),
    ]
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


async def ratelimit_cost(stack: Any, invoices: int) -> dict[str, float]:
    from gateway import campaign as campaigns
    from gateway.model import Queued
    from gateway.settings import from_env
    from gateway.stores import open_redis
    from ratelimit.limits import RateLimiter

    settings = from_env({k: v for k, v in stack.env.items() if k.startswith("GATEWAY_")})
    redis = open_redis(settings)
    limiter = RateLimiter(redis, campaigns.load(settings.campaign_file).limits)
    batch = [
        Queued(str(i), "", "", "2026-06-01", 100, "", "", "", "", "p", f"u{i}", f"d{i}", "", "bench", 0)
        for i in range(invoices)
    ]
    out: dict[str, list[float]] = {"limits_us": [], "ping_us": []}
    try:
        for _ in range(3):
            for name, call in (
                ("limits_us", lambda: limiter.decide("bench", invoices, batch)),
                ("ping_us", redis.ping),
            ):
                samples = []
                for _ in range(500):
                    started = time.perf_counter()
                    await call()
                    samples.append(time.perf_counter() - started)
                out[name].append(statistics.median(samples) * 1e6)
    finally:
        await redis.aclose()
    return {k: statistics.median(v) for k, v in out.items()}


def run(stack: Any, seconds: float, invoices: int) -> dict[str, Any]:
    url = f"http://127.0.0.1:{stack.port}"
    tmp = stack.data / "load"
    tmp.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"invoices_per_request": invoices, "seconds_per_step": seconds}

    generate(url, "demo-channel", 3, invoices, tmp / "warm.jsonl").wait()
    generate(url, "demo-channel", seconds, invoices, tmp / "cap.jsonl", concurrency=8).wait()
    capacity = summarize(tmp / "cap.jsonl", seconds)
    result["capacity"] = capacity
    cap_rps = capacity["admitted_rps"]  # what the gateway took, not what was sent

    steps = []
    rss_start = gateway_rss_kb(stack)
    for k in (1, 2, 3, 4, 5):
        out = tmp / f"step{k}.jsonl"
        # Two generator processes, half the rate each, so one generator's event loop is not the limit.
        gens = [
            generate(url, "demo-channel", seconds, invoices, Path(f"{out}.{i}"), rate=k * cap_rps / 2) for i in range(2)
        ]
        for g in gens:
            g.wait()
        parts = [summarize(Path(f"{out}.{i}"), seconds) for i in range(2)]
        step = _merge(parts, k)
        step["gateway_rss_kb"] = gateway_rss_kb(stack)
        steps.append(step)
        time.sleep(2)  # let the pipeline catch up between steps
    result["steps"] = steps
    result["rss_growth"] = steps[-1]["gateway_rss_kb"] / rss_start - 1

    normal_rate = 0.3 * cap_rps
    generate(url, "demo-channel-2", seconds, invoices, tmp / "b_alone.jsonl", rate=normal_rate).wait()
    b_alone = summarize(tmp / "b_alone.jsonl", seconds)
    time.sleep(2)
    flood = [
        generate(url, "demo-channel", seconds, invoices, tmp / f"a_flood.{i}.jsonl", rate=10 * 0.5 * cap_rps / 2)
        for i in range(2)
    ]
    b = generate(url, "demo-channel-2", seconds, invoices, tmp / "b_flood.jsonl", rate=normal_rate)
    b.wait()
    for g in flood:
        g.wait()
    b_flood = summarize(tmp / "b_flood.jsonl", seconds)
    a_flood = _merge([summarize(tmp / f"a_flood.{i}.jsonl", seconds) for i in range(2)], 10)
    result["fairness"] = {
        "b_alone": b_alone,
        "b_with_flood": b_flood,
        "a_flood": a_flood,
        "b_kept": b_flood["goodput"] / b_alone["goodput"] if b_alone["goodput"] else 0.0,
    }
    result["ratelimit_cost"] = asyncio.run(ratelimit_cost(stack, invoices))
    return result


def _merge(parts: list[dict[str, Any]], k: float) -> dict[str, Any]:
    statuses: dict[str, int] = {}
    for p in parts:
        for s, n in p["statuses"].items():
            statuses[s] = statuses.get(s, 0) + n
    p99s = [p["p99_ms"] for p in parts if p["p99_ms"] is not None]
    return {
        "load": k,
        "offered_rps": sum(p["offered_rps"] for p in parts),
        "goodput": sum(p["goodput"] for p in parts),
        "p99_ms": max(p99s) if p99s else None,
        "statuses": statuses,
        "generator_cores": sum(p["generator_cores"] for p in parts),
    }


def markdown(r: dict[str, Any]) -> str:
    cap = r["capacity"]
    lines = [
        f"Capacity (closed loop, 8 in flight, {r['invoices_per_request']} invoices a request): "
        f"{cap['admitted_rps']:,.0f} requests/s admitted, {cap['goodput']:,.0f} invoices/s accepted, "
        f"p99 {cap['p99_ms']:.1f} ms.",
        "",
        "| offered | requests/s offered | goodput (invoices/s) | goodput / capacity | p99 of 202s | statuses"
        " | generator CPU (cores) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for s in r["steps"]:
        p99 = f"{s['p99_ms']:.1f} ms" if s["p99_ms"] is not None else "-"
        lines.append(
            f"| {s['load']}x | {s['offered_rps']:,.0f} | {s['goodput']:,.0f} | {s['goodput'] / cap['goodput']:.0%} "
            f"| {p99} | {s['statuses']} | {s['generator_cores']:.2f} |"
        )
    f = r["fairness"]
    lines += [
        "",
        f"Gateway RSS growth from 1x to 5x: {r['rss_growth']:+.1%}.",
        f"Fairness: channel B alone {f['b_alone']['goodput']:,.0f} invoices/s; with channel A offering 10x its share "
        f"({f['a_flood']['offered_rps']:,.0f} requests/s, {f['a_flood']['goodput']:,.0f} accepted/s) B got "
        f"{f['b_with_flood']['goodput']:,.0f} invoices/s: {f['b_kept']:.0%} of its normal goodput "
        f"(statuses {f['b_with_flood']['statuses']}).",
        f"Rate-limit check: {r['ratelimit_cost']['limits_us']:,.0f} µs per {r['invoices_per_request']}-invoice request "
        f"(one script call), beside {r['ratelimit_cost']['ping_us']:,.0f} µs for a PING.",
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--invoices", type=int, default=20)
    args = parser.parse_args()
    with bench_stack(full=True) as stack:
        result = run(stack, args.seconds, args.invoices)
    save("overload", "Overload and fairness", result, markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
