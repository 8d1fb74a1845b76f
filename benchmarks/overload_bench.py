"""Overload and fairness, on the dev stack, in one run (issue 4's figures).

    .venv/bin/python benchmarks/overload_bench.py [--seconds 6] [--invoices 20] [--loads 1,2,3,4,5]
        [--env GATEWAY_NAME=VALUE ...] [--out overload]

Starts its own stack (Redis, PostgreSQL, simulator, gunicorn with 2 processes, 1 worker) under .data/bench,
then with benchmarks/loadgen.py (separate processes, their CPU reported):

1. capacity: closed loop, 8 requests in flight (a refused client pauses 20 ms), accepted invoices/s, measured
   right before each step (the machine is shared: its other users come and go);
2. overload: open loop at 1x, 2x, 3x, 4x, 5x of that capacity (in requests/s): goodput (accepted
   invoices/s), p99 latency of the admitted (202) requests, every status seen, gateway RSS before and after;
3. fairness: channel B alone at 30% of capacity, then again while channel A offers 10x its share;
4. costs: the rate-limit call for one request (it spends the nonce too) beside a PING and the nonce's own
   SET; the gateway's CPU per admitted request and per refused one.

Each phase records the CPU of every process of the stack, of the generators, and of everything else on the
machine (other users), and the requests shed by reason. Writes benchmarks/results/OUT.json and OUT.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
LOADGEN = ROOT / "benchmarks" / "loadgen.py"
CLOSED_LOOP = 8  # requests in flight when measuring the capacity (4 per gateway process)
GAUGES = ("ratelimit_pipeline_saturated ", "ratelimit_pipeline_stream_entries ", "ratelimit_concurrency_limit ")

from benchmarks.common import bench_stack, save  # noqa: E402
from deploy import devstack  # noqa: E402


def generate(
    url: str, client: str, seconds: float, invoices: int, out: Path, rate: float = 0.0, start_at: float = 0.0
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
    argv += ["--rate", str(rate)] if rate else ["--concurrency", str(CLOSED_LOOP)]
    argv += ["--start-at", str(start_at)] if start_at else []
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


def family(pid: int) -> list[int]:
    """A process and its children (gunicorn's workers, PostgreSQL's backends)."""
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [pid, *map(int, children)]


def gateway_pids(stack: Any) -> list[int]:
    """The gunicorn master and its workers."""
    return family(next(p for n, p in stack.procs if n == "gateway").pid)


def gateway_rss_kb(stack: Any) -> int:
    total = 0
    for pid in gateway_pids(stack):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


def cpu_ticks_of(pid: int) -> int:
    with contextlib.suppress(FileNotFoundError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    return 0


def cpu_ticks(stack: Any) -> dict[str, int]:
    """CPU time (clock ticks) of each process of the stack so far, children included (those alive at the end: a
    PostgreSQL backend that ended inside the window is not counted)."""
    ticks: dict[str, int] = {}
    for name, proc in stack.procs:
        ticks[name] = sum(cpu_ticks_of(pid) for pid in family(proc.pid))
    return ticks


def gateway_metrics(url: str) -> dict[str, Any]:
    """From the gateway's /metrics: requests shed by reason, whether the pipeline counts as saturated, backlog."""
    shed: dict[str, float] = {}
    gauges: dict[str, float] = {}
    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith("ratelimit_shed_requests_total{"):
                reason = line.split('reason="', 1)[1].split('"', 1)[0]
                shed[reason] = shed.get(reason, 0.0) + float(line.rsplit(" ", 1)[1])
            elif line.startswith(
                ("ratelimit_pipeline_saturated ", "ratelimit_pipeline_stream_entries ", "ratelimit_concurrency_limit ")
            ):
                name, value = line.split(" ", 1)
                gauges[name] = float(value)
    return {"shed": shed, **gauges}


def busy_ticks() -> int:
    """CPU time (clock ticks) the whole machine spent busy so far, every process of every user."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    return sum(fields) - fields[3] - fields[4]  # all but idle and iowait


def phase(stack: Any, url: str, seconds: float, invoices: int, loads: list[tuple[str, float, Path]]) -> dict[str, Any]:
    """Generators (client, rate or 0 for a closed loop of CLOSED_LOOP, output) whose clocks start together; the CPU each
    process of the stack used inside the window (cores), requests shed by reason, the pipeline's state."""
    start_at = time.time() + 2.0 + sum(rate or 600 for _, rate, _ in loads) * seconds / 20_000  # building time
    gens = [generate(url, client, seconds, invoices, out, rate=rate, start_at=start_at) for client, rate, out in loads]
    before_m = gateway_metrics(url)
    time.sleep(max(0.0, start_at - time.time()))
    before, machine, t0 = cpu_ticks(stack), busy_ticks(), time.time()
    time.sleep(seconds)
    after, machine, took = cpu_ticks(stack), busy_ticks() - machine, time.time() - t0
    for g in gens:
        g.wait()
    hz = os.sysconf("SC_CLK_TCK")
    after_m = gateway_metrics(url)
    shed = {k: v - before_m["shed"].get(k, 0.0) for k, v in after_m["shed"].items()}
    cores = {name: round((after[name] - before.get(name, 0)) / hz / took, 3) for name in after}
    generators = sum(json.loads(out.read_text().splitlines()[-1])["cpu_s"] for _, _, out in loads) / took
    return {
        "cores": cores,
        # The machine is shared: what everything else on it (other users' processes) used meanwhile.
        "others_cores": round(max(0.0, machine / hz / took - sum(cores.values()) - generators), 3),
        "load_average": os.getloadavg()[0],
        "shed": {k: v for k, v in shed.items() if v},
        "saturated_after": after_m.get("ratelimit_pipeline_saturated", 0.0),
        "backlog_after": after_m.get("ratelimit_pipeline_stream_entries", 0.0),
        "concurrency_limit_after": after_m.get("ratelimit_concurrency_limit", 0.0),
    }


def refusal_cost(stack: Any, invoices: int, rate: float = 800.0, seconds: float = 4.0) -> dict[str, float]:
    """Gateway CPU per refused request: a gunicorn of one process whose only slot a feed long poll holds,
    offered uploads at ``rate``; every one of them is a 503."""
    from loadtest.client import SignedClient

    port = devstack.free_port()
    env = {"GATEWAY_MAX_IN_FLIGHT": "1", "GATEWAY_FAIR_WAIT_MS": "0", "GATEWAY_TARGET_LATENCY_MS": "0"}
    proc = stack.start_gateway(1, port, env, name="gateway-refusing")
    url = f"http://127.0.0.1:{port}"
    draw = SignedClient(url, "demo-draw", "demo-draw-secret")
    holder = threading.Thread(target=draw.feed, kwargs={"after": 10**9, "wait": seconds + 8})
    try:
        holder.start()
        time.sleep(1)
        out = stack.data / "load" / "refused.jsonl"
        start_at = time.time() + 2.0
        gen = generate(url, "demo-channel", seconds, invoices, out, rate=rate, start_at=start_at)
        time.sleep(max(0.0, start_at - time.time()))
        ticks = sum(cpu_ticks_of(pid) for pid in family(proc.pid))
        t0 = time.time()
        time.sleep(seconds)
        used_s = (sum(cpu_ticks_of(pid) for pid in family(proc.pid)) - ticks) / os.sysconf("SC_CLK_TCK")
        took = time.time() - t0
        gen.wait()
        seen = summarize(out, seconds)
        holder.join(seconds + 10)
    finally:
        draw.close()
        proc.terminate()
        proc.wait(10)
    refused = seen["statuses"].get("503", 0) / seconds
    return {"refused_per_s": refused, "cpu_us_per_refusal": 1e6 * used_s / took / refused if refused else 0.0}


async def ratelimit_cost(stack: Any, invoices: int) -> dict[str, float]:
    from core import campaign as campaigns
    from core import keys
    from core.contract import Queued
    from core.settings import from_env
    from core.stores import open_redis
    from gateway.auth import spend_nonce
    from ratelimit.limits import Nonce, RateLimiter

    settings = from_env({k: v for k, v in stack.env.items() if k.startswith("GATEWAY_")})
    redis = open_redis(settings.stores)
    limiter = RateLimiter(redis, campaigns.load(settings.campaign_file).limits)
    batch = [
        Queued(str(i), "", "", "2026-06-01", 100, "", "", "", "", "p", f"u{i}", f"d{i}", "", "bench", 0)
        for i in range(invoices)
    ]

    def nonce() -> Nonce:
        return Nonce(keys.nonce("bench", os.urandom(12).hex()), b"token", 60)

    out: dict[str, list[float]] = {"limits_us": [], "nonce_us": [], "ping_us": []}
    try:
        for _ in range(3):
            for name, call in (
                ("limits_us", lambda: limiter.decide("bench", invoices, batch, nonce())),
                ("nonce_us", lambda: spend_nonce(redis, nonce())),
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


def run(stack: Any, seconds: float, invoices: int, loads: list[int]) -> dict[str, Any]:
    url = f"http://127.0.0.1:{stack.port}"
    tmp = stack.data / "load"
    tmp.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"invoices_per_request": invoices, "seconds_per_step": seconds, "env": stack.extra_env}

    generate(url, "demo-channel", 3, invoices, tmp / "warm.jsonl").wait()
    steps = []
    rss_start = gateway_rss_kb(stack)
    for k in loads:
        # The machine is shared and its other users come and go: each step is paired with a capacity measured
        # just before it (closed loop), offered k times that, and judged against it.
        seen = phase(stack, url, seconds, invoices, [("demo-channel", 0, tmp / f"cap{k}.jsonl")])
        capacity = {**summarize(tmp / f"cap{k}.jsonl", seconds), **seen}
        cap_rps = capacity["admitted_rps"]  # what the gateway took, not what was sent
        time.sleep(2)
        out = tmp / f"step{k}.jsonl"
        # Two generator processes, half the rate each, so one generator's event loop is not the limit.
        outs = [Path(f"{out}.{i}") for i in range(2)]
        seen = phase(stack, url, seconds, invoices, [("demo-channel", k * cap_rps / 2, o) for o in outs])
        step = {**_merge([summarize(o, seconds) for o in outs], k), **seen}
        step["capacity"] = capacity
        step["goodput_ratio"] = step["goodput"] / capacity["goodput"] if capacity["goodput"] else 0.0
        step["gateway_rss_kb"] = gateway_rss_kb(stack)
        steps.append(step)
        time.sleep(2)  # let the pipeline catch up between steps
    result["steps"] = steps
    result["rss_growth"] = steps[-1]["gateway_rss_kb"] / rss_start - 1
    cap_rps = statistics.median(s["capacity"]["admitted_rps"] for s in steps)
    capacity = min((s["capacity"] for s in steps), key=lambda c: abs(c["admitted_rps"] - cap_rps))
    result["capacity"] = capacity  # the median one

    normal_rate = 0.3 * cap_rps  # of the median capacity
    seen = phase(stack, url, seconds, invoices, [("demo-channel-2", normal_rate, tmp / "b_alone.jsonl")])
    b_alone = {**summarize(tmp / "b_alone.jsonl", seconds), **seen}
    time.sleep(2)
    flood = [("demo-channel", 10 * 0.5 * cap_rps / 2, tmp / f"a_flood.{i}.jsonl") for i in range(2)]
    seen = phase(stack, url, seconds, invoices, [*flood, ("demo-channel-2", normal_rate, tmp / "b_flood.jsonl")])
    b_flood = summarize(tmp / "b_flood.jsonl", seconds)
    a_flood = _merge([summarize(out, seconds) for _, _, out in flood], 10)
    result["fairness"] = {
        "b_alone": b_alone,
        "b_with_flood": b_flood,
        "a_flood": a_flood,
        "b_kept": b_flood["goodput"] / b_alone["goodput"] if b_alone["goodput"] else 0.0,
        **seen,
    }
    result["ratelimit_cost"] = asyncio.run(ratelimit_cost(stack, invoices))
    result["refusal_cost"] = refusal_cost(stack, invoices)
    result["admitted_cpu_us"] = 1e6 * capacity["cores"]["gateway"] / capacity["admitted_rps"]
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


def _cores(s: dict[str, Any]) -> str:
    rest = sum(v for k, v in s["cores"].items() if k != "gateway")
    return f"{s['cores'].get('gateway', 0):.2f} / {s['generator_cores']:.2f} / {rest:.2f} / {s['others_cores']:.2f}"


def markdown(r: dict[str, Any]) -> str:
    lines = [
        f"Each step is paired with the capacity measured just before it (closed loop, {CLOSED_LOOP} in flight, a "
        f"503 pauses its client 20 ms, {r['invoices_per_request']} invoices a request), offered k times that, "
        "and judged against it. CPU in cores: gateway / generator / rest of the stack / other users of the machine.",
        "",
        "| offered | capacity just before (req/s, invoices/s, p99, statuses) | requests/s offered"
        " | goodput (invoices/s) | goodput / capacity | p99 of 202s | statuses | shed by reason | CPU |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for s in r["steps"]:
        c = s["capacity"]
        p99 = f"{s['p99_ms']:.1f} ms" if s["p99_ms"] is not None else "-"
        shed = ", ".join(f"{k} {v:,.0f}" for k, v in sorted(s["shed"].items())) or "-"
        lines.append(
            f"| {s['load']}x | {c['admitted_rps']:,.0f}, {c['goodput']:,.0f}, {c['p99_ms']:.0f} ms, {c['statuses']}"
            f" | {s['offered_rps']:,.0f} | {s['goodput']:,.0f} | {s['goodput_ratio']:.0%} | {p99} | {s['statuses']}"
            f" | {shed} | {_cores(s)} |"
        )
    f = r["fairness"]
    lines += [
        "",
        f"Gateway RSS growth from 1x to 5x: {r['rss_growth']:+.1%}.",
        f"Fairness: channel B alone {f['b_alone']['goodput']:,.0f} invoices/s; with channel A offering 10x its share "
        f"({f['a_flood']['offered_rps']:,.0f} requests/s, {f['a_flood']['goodput']:,.0f} accepted/s) B got "
        f"{f['b_with_flood']['goodput']:,.0f} invoices/s: {f['b_kept']:.0%} of its normal goodput "
        f"(statuses {f['b_with_flood']['statuses']}; shed {f['shed']}).",
        f"Gateway CPU per request: {r['admitted_cpu_us']:,.0f} µs per admitted {r['invoices_per_request']}-invoice "
        f"upload (the median capacity run), {r['refusal_cost']['cpu_us_per_refusal']:,.0f} µs per refused one "
        f"({r['refusal_cost']['refused_per_s']:,.0f} refusals/s offered to one process).",
        f"Rate-limit check: {r['ratelimit_cost']['limits_us']:,.0f} µs per {r['invoices_per_request']}-invoice request "
        f"(one script call that also spends the request's nonce), beside {r['ratelimit_cost']['ping_us']:,.0f} µs "
        f"for a PING and {r['ratelimit_cost']['nonce_us']:,.0f} µs for the nonce's SET NX GET on its own, the round "
        "trip it saves.",
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--invoices", type=int, default=20)
    parser.add_argument("--loads", default="1,2,3,4,5", help="offered loads, in multiples of the capacity")
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the stack, e.g. GATEWAY_...")
    parser.add_argument("--out", default="overload", help="results under benchmarks/results/OUT.{json,md}")
    parser.add_argument("--runs", type=int, default=3, help="whole runs, each on a fresh stack; medians of them")
    args = parser.parse_args()
    env = dict(pair.split("=", 1) for pair in args.env)
    runs = []
    for _ in range(args.runs):
        with bench_stack(full=True, extra_env=env) as stack:
            runs.append(run(stack, args.seconds, args.invoices, [int(k) for k in args.loads.split(",")]))
    save(args.out, "Overload and fairness", {"medians": medians(runs), "runs": runs}, report)
    return 0


def medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per offered load, the median over the runs of each figure the issue sets a target for."""
    med = statistics.median
    steps = []
    for i, first in enumerate(runs[0]["steps"]):
        mine = [r["steps"][i] for r in runs]
        steps.append(
            {
                "load": first["load"],
                "goodput_ratio": med(s["goodput_ratio"] for s in mine),
                "p99_ms": med(s["p99_ms"] for s in mine if s["p99_ms"] is not None),
                "only_202_429_503": all(set(s["statuses"]) <= {"202", "429", "503"} for s in mine),
                "generator_cores": med(s["generator_cores"] for s in mine),
                "others_cores": med(s["others_cores"] for s in mine),
            }
        )
    return {
        "steps": steps,
        "rss_growth": med(r["rss_growth"] for r in runs),
        "b_kept": med(r["fairness"]["b_kept"] for r in runs),
        "limits_us": med(r["ratelimit_cost"]["limits_us"] for r in runs),
        "nonce_us": med(r["ratelimit_cost"]["nonce_us"] for r in runs),
        "ping_us": med(r["ratelimit_cost"]["ping_us"] for r in runs),
        "refusal_cpu_us": med(r["refusal_cost"]["cpu_us_per_refusal"] for r in runs),
        "admitted_cpu_us": med(r["admitted_cpu_us"] for r in runs),
    }


def report(result: dict[str, Any]) -> str:
    m, runs = result["medians"], result["runs"]
    lines = [
        f"Medians of {len(runs)} runs, each on a fresh stack, on a 2-core machine shared with other users (their CPU"
        " is in each run's tables).",
        "",
        "| offered | goodput / capacity | p99 of 202s | only 202, 429, 503 | generator CPU (cores) | other users' CPU "
        "|",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for s in m["steps"]:
        lines.append(
            f"| {s['load']}x | {s['goodput_ratio']:.0%} | {s['p99_ms']:.0f} ms | {s['only_202_429_503']} "
            f"| {s['generator_cores']:.2f} | {s['others_cores']:.2f} |"
        )
    lines += [
        "",
        f"Fairness, channel B's goodput kept while A sends 10x its share: {m['b_kept']:.0%} (runs: "
        + ", ".join(f"{r['fairness']['b_kept']:.0%}" for r in runs)
        + f"). Gateway RSS growth 1x to 5x: {m['rss_growth']:+.1%}.",
        f"Rate-limit call (limits and nonce, one round trip): {m['limits_us']:,.0f} µs; PING {m['ping_us']:,.0f} µs; "
        f"the nonce's own SET it replaces {m['nonce_us']:,.0f} µs. Gateway CPU: {m['admitted_cpu_us']:,.0f} µs per "
        f"admitted 20-invoice upload, {m['refusal_cpu_us']:,.0f} µs per refusal.",
    ]
    for i, r in enumerate(runs, 1):
        lines += ["", f"## Run {i}", "", markdown(r).rstrip()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
