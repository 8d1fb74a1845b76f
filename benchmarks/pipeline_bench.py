"""The pipeline against this machine's own limits, in one run (issue 7): ``make bench``.

    .venv/bin/python benchmarks/pipeline_bench.py [--round-s 5] [--rounds 3] [--burst 200000] [--in-flight N]

1. A stack without workers (Redis, PostgreSQL, gunicorn with 2 processes), and on it the machine's limits
   (benchmarks/limits.py): the bare ASGI app under the same server, Redis ops/s, the sink's rows/s.
2. The gateway's accept rate and latency (wrk with pre-signed requests, benchmarks/presigned.lua) for
   single-invoice and 100-invoice requests at full speed, then at 70% of that rate; a py-spy profile of one
   gateway process at full speed for each.
3. A fresh full stack (with the simulator and 2 workers): a burst of N invoices uploaded as fast as the
   gateway takes them (benchmarks/loadgen.py --burst, 2 processes) until the last one is in a sealed feed
   batch; none lost or doubled; end-to-end invoices/s; the peak memory of every process. Then the same burst on
   another fresh stack with every invoice's answer in the workers' cache beforehand (no call to the simulator):
   the pipeline's own cost, told apart from the simulated tax service's.

The bench's campaign raises the channel rate limits and its gateway does not shed (more in-flight requests,
no pipeline saturation): what is measured is the machine's capacity, not the configured policy.
Writes benchmarks/results/pipeline.json and pipeline.md (and the profiles), and prints the table.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time
import tomllib
import urllib.request
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import limits, presign, procs, profile, redis_families  # noqa: E402
from benchmarks.common import RESULTS, bench_stack, commit, metric, save, statements, statements_reset  # noqa: E402
from benchmarks.loadgen import Invoices  # noqa: E402
from core import settings as config  # noqa: E402
from deploy import devstack  # noqa: E402

LUA = ROOT / "benchmarks" / "presigned.lua"
LOADGEN = ROOT / "benchmarks" / "loadgen.py"
CHANNEL, SECRET = "demo-channel", "demo-channel-secret"
NO_SHEDDING = {
    "GATEWAY_MAX_IN_FLIGHT": "256",
    "GATEWAY_TARGET_LATENCY_MS": "0",  # a fixed limit: the adaptive one would refuse what is measured here
    "GATEWAY_SHED_HIGH_AGE_S": "86400",
    "GATEWAY_SHED_HIGH_BACKLOG": "1000000000",
}
KINDS = {"single": 1, "batch": 100}
# Requests whose rate limits Redis did not answer in time (let through without them).
FAILED_OPEN = "gateway_ratelimit_fail_open_total"


def bench_campaign(folder: Path, caps_form: str = "compact") -> Path:
    """The sandbox campaign with channel rate limits far above what this machine can do. Its cap hashes take
    the compact form from this month (``caps.compact_from``: a bench's Redis is empty, as a new campaign's),
    the form of every month from January 2027; ``caps_form="before"`` keeps the form of the months before."""
    text = (ROOT / "deploy" / "campaigns" / "hefei-2026.toml").read_text()
    raised, n = re.subn(r"(?m)^channel_(requests|invoices)_(per_s|burst) = .*$", r"channel_\1_\2 = 100000000", text)
    assert n == 4, "the campaign's channel limits moved: update benchmarks/pipeline_bench.py"
    zone = ZoneInfo(tomllib.loads(raised)["caps"]["timezone"])
    month = dt.datetime.now(zone).strftime("%Y%m") if caps_form == "compact" else "209912"
    raised, n = re.subn(r'(?m)^# compact_from = ".*"$', f'compact_from = "{month}"', raised)
    assert n == 1, "the campaign's caps.compact_from moved: update benchmarks/pipeline_bench.py"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "bench-campaign.toml"
    path.write_text(raised)
    return path


class Meter:
    """CPU seconds of the generator (this process's children) and of the stack's processes over one run."""

    def __init__(self, stack: Any) -> None:
        self.roots = {name: p.pid for name, p in stack.procs}
        self.gateways = procs.tree(self.roots["gateway"]) if "gateway" in self.roots else []

    def __enter__(self) -> Meter:
        self.t0 = time.perf_counter()
        self.gen0 = _children_cpu()
        self.busy0 = procs.machine_busy_s()
        self.cpu0 = {name: procs.tree_cpu_s(pid) for name, pid in self.roots.items()}
        self.each0 = {pid: procs.cpu_s([pid]) for pid in self.gateways}
        self.wait0 = procs.runnable_wait_s(self.gateways)
        return self

    def __exit__(self, *_: object) -> None:
        seconds = time.perf_counter() - self.t0
        self.cores = {name: (procs.tree_cpu_s(pid) - self.cpu0[name]) / seconds for name, pid in self.roots.items()}
        self.cores["generator"] = (_children_cpu() - self.gen0) / seconds
        # The busiest gateway process: keep-alive connections need not spread evenly over the processes.
        self.busiest = max(((procs.cpu_s([p]) - c) / seconds for p, c in self.each0.items()), default=0.0)
        # How long the gateway's processes were ready to run but waited for a core (cores' worth).
        self.gateway_waited = (procs.runnable_wait_s(self.gateways) - self.wait0) / seconds
        # Everything else on the machine: what the stack's process trees did not use (in the limits' rows, the bare
        # app's own gunicorn, which is not the stack's; elsewhere other engineers' work, or the bench itself).
        self.cores["others"] = max(0.0, (procs.machine_busy_s() - self.busy0) / seconds - sum(self.cores.values()))


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def wrk(
    url: str, seconds: float, connections: int, script: Path | None, *args: str, rate: float = 0.0
) -> dict[str, Any]:
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency"]
    if script is not None:
        argv += ["-s", str(script)]
    env = {**os.environ, "WRK_RATE": f"{rate:g}"}
    out = subprocess.run([*argv, url, "--", *args], capture_output=True, text=True, check=True, env=env).stdout
    result: dict[str, Any] = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}  # type: ignore[union-attr]
    last = out.strip().splitlines()[-1]
    if last.startswith("{"):
        result.update(json.loads(last))
    return result


def median_of(rounds: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(r[key] for r in rounds))


def _wrk_rounds(stack: Any, args: argparse.Namespace) -> Callable[[str, Path | None], dict[str, Any]]:
    """wrk at full speed against a URL, ``args.rounds`` times: the median requests/s and each round."""

    def rounds(url: str, script: Path | None) -> dict[str, Any]:
        runs = []
        for _ in range(args.rounds):
            with Meter(stack) as m:
                run = wrk(url, args.round_s, 32, script)
            runs.append({**run, "cores": m.cores})
        return {"rps": median_of(runs, "rps"), "rounds": runs}

    return rounds


def machine_limits(stack: Any, args: argparse.Namespace) -> dict[str, Any]:
    body = Invoices().body(100)
    bare = limits.bare_app(devstack, stack.data / "bare", 2, _wrk_rounds(stack, args), body)
    print(f"bare ASGI app: GET {bare['get']['rps']:,.0f} req/s, POST of 100 invoices {bare['post']['rps']:,.0f} req/s")
    redis = limits.redis_ops(stack.redis_port, args.rounds)
    print("redis:", json.dumps({k: {c: v["median"] for c, v in d.items()} for k, d in redis.items()}))
    sink = limits.sink_rows(stack.env["GATEWAY_DATABASE_URL"], 5000, rounds=args.rounds)
    print(f"sink (COPY + upsert): {sink['median']:,.0f} rows/s")
    return {"bare_app": bare, "redis": redis, "sink": sink, "upload_body_bytes": len(body)}


def gateway(stack: Any, args: argparse.Namespace, profiles: str = "profile") -> dict[str, Any]:
    """The gateway's rows; each kind's py-spy profile in results/<profiles>-<kind>.txt."""
    inv = Invoices()
    out: dict[str, Any] = {}
    for kind, n in KINDS.items():
        out[kind] = _gateway_kind(stack, args, kind, n, inv, RESULTS / f"{profiles}-{kind}.txt")
    return out


def _gateway_kind(stack: Any, args: argparse.Namespace, kind: str, n: int, inv: Invoices, spy: Path) -> dict[str, Any]:
    """Full speed (32 connections), then 70% of that rate (scheduled by wrk), then a profile at full speed."""
    url = f"http://127.0.0.1:{stack.port}"
    file = stack.data / "wrk" / f"{kind}.req"
    file.parent.mkdir(parents=True, exist_ok=True)
    expect_rps = 12000.0 if n == 1 else 600.0  # a first guess; later rounds are sized from what was seen

    def run(connections: int, rate: float = 0.0, seconds: float = args.round_s) -> dict[str, Any]:
        nonlocal expect_rps
        count = int((rate or expect_rps) * seconds * 1.5) + 100
        presign.write(file, f"127.0.0.1:{stack.port}", CHANNEL, SECRET, count, n, inv)
        calls0, open0 = _redis_calls(stack), metric(url, FAILED_OPEN)
        with Meter(stack) as m:
            result = wrk(url, seconds, connections, LUA, str(file), rate=rate)
        result["limits_failed_open"] = metric(url, FAILED_OPEN) - open0
        result["cores"] = m.cores
        result["busiest_gateway_process"] = m.busiest
        result["gateway_waited"] = m.gateway_waited
        result["redis_per_request"] = _per_request(calls0, _redis_calls(stack), result["requests"])
        result["accepted_per_s"] = result["accepted"] / (result["duration_us"] / 1e6)
        expect_rps = max(expect_rps, result["rps"])
        if result["wrapped"]:
            raise SystemExit(f"{kind}: wrk ran out of pre-signed requests ({count}); the run is void")
        return result

    run(32, seconds=2)  # warm up
    full = [run(32) for _ in range(args.rounds)]
    target = 0.7 * median_of(full, "rps")
    paced = [run(32, rate=target) for _ in range(args.rounds)]
    gunicorn = next(p for name, p in stack.procs if name == "gateway")
    with profile.record(gunicorn.pid, spy, args.round_s, subprocesses=True):
        run(32)
    print(
        f"{kind}: {median_of(full, 'rps'):,.0f} req/s, {median_of(full, 'accepted_per_s'):,.0f} invoices/s, "
        f"p99 {median_of(full, 'p99_us') / 1000:.1f} ms; at 70% p99 {median_of(paced, 'p99_us') / 1000:.1f} ms"
    )
    return {
        "invoices_per_request": n,
        "full": full,
        "paced": paced,
        "target_rps": target,
        "profile": str(spy.relative_to(ROOT)),
    }


def _redis_calls(stack: Any) -> dict[str, tuple[int, int]]:
    """Redis's own count of each command: (calls, microseconds spent in them), from INFO commandstats."""
    import redis

    client = redis.Redis(port=stack.redis_port)
    try:
        stats = client.info("commandstats")
    finally:
        client.close()
    return {name.removeprefix("cmdstat_"): (v["calls"], v["usec"]) for name, v in stats.items()}


def _per_request(
    before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]], requests: int
) -> dict[str, dict[str, float]]:
    """Commands per gateway request, and Redis's own time per call, for the commands the run used."""
    out = {}
    for name, (calls, usec) in after.items():
        calls0, usec0 = before.get(name, (0, 0))
        if calls > calls0 and requests:
            n = calls - calls0
            out[name] = {"per_request": n / requests, "usec_per_call": (usec - usec0) / n}
    return out


def burst(stack: Any, args: argparse.Namespace, cached: bool = False) -> dict[str, Any]:
    """BENCH_BURST invoices uploaded as fast as the gateway takes them, until the last is in the feed. With
    ``cached``, every invoice's verified answer is in the workers' cache before the clock starts (what the
    simulator would answer): the pipeline's own cost, without the simulated tax service's."""
    folder = stack.data / "burst"
    folder.mkdir(parents=True, exist_ok=True)
    everyone = {name: procs.tree(p.pid) for name, p in stack.procs}
    _wait_for_workers(stack, sum(1 for name in everyone if name.startswith("worker-")))
    prefixes = [f"9{cached:d}{i:06d}" for i in range(2)]
    client = redis.Redis(port=stack.redis_port)
    memory0 = redis_families.snapshot(client, 2000)
    if cached:
        asyncio.run(_precache(stack, prefixes, _shares(args.burst)))
    calls0 = _tax_service_calls(stack)
    if args.pg_stats:
        asyncio.run(statements_reset(stack.env["GATEWAY_DATABASE_URL"]))
    procs.reset_peak(pid for pids in everyone.values() for pid in pids)
    name = f"burst-{args.burst}" if args.burst_only else ""
    spy = RESULTS / f"profile-worker{'-' if name else ''}{name}{'-cached' if cached else ''}.txt"
    worker = next(p for name, p in stack.procs if name == "worker-0")
    with profile.record(worker.pid, spy, args.worker_profile_s, nonblocking=True), Meter(stack) as meter:
        started = time.time()
        gens = _upload(f"http://127.0.0.1:{stack.port}", folder, args.burst, prefixes)
        uploaded = time.time()
        fed_at, counts = asyncio.run(_wait_for_feed(stack.env["GATEWAY_DATABASE_URL"], args.burst, started))
    # The trees again: a process started during the burst (a PostgreSQL backend) has its peak since its start.
    rss = {name: max(procs.peak_rss_kb(pid) for pid in procs.tree(p.pid)) for name, p in stack.procs}
    pg = asyncio.run(statements(stack.env["GATEWAY_DATABASE_URL"], args.burst, top=15)) if args.pg_stats else None
    rss.update({f"generator-{i}": kb for i, kb in enumerate(gens["maxrss_kb"])})
    kept = redis_families.kept_after_drain(client, memory0, args.burst)
    client.close()
    return {
        "invoices": args.burst,
        "taken": gens["taken"],
        "statuses": gens["statuses"],
        "upload_s": uploaded - started,
        "upload_rate": gens["taken"] / (uploaded - started),
        "generator_cores": gens["cpu_s"] / (uploaded - started),
        "feed_s": fed_at - started if fed_at else None,
        "end_to_end_rate": args.burst / (fed_at - started) if fed_at else None,
        **counts,
        "peak_rss_kb": rss,
        "redis_bytes_kept": kept,
        "cores": meter.cores,
        "profile": str(spy.relative_to(ROOT)),
        "cached": cached,
        "tax_service_calls": _tax_service_calls(stack) - calls0,
        "in_flight": args.in_flight,
        **({"pg_statements": pg} if pg else {}),
    }


def _shares(n: int) -> list[int]:
    """The invoices of each of the 2 generators."""
    return [n // 2, n - n // 2]


async def _precache(stack: Any, prefixes: list[str], shares: list[int]) -> None:
    """The answer the simulator gives each invoice the generators will send (benchmarks/loadgen.py: 188.00
    yuan on 2026-06-01, a plain sandbox number), in the workers' own cache (workers/verify.py's Cache)."""
    from core.campaign import load
    from core.shards import digest, shard_of
    from core.stores import open_redis
    from workers.verify import Cache, Verified

    shards = load(stack.env["GATEWAY_CAMPAIGN_FILE"]).dedup.shards
    answer = Verified(amount_fen=18800, issue_date="2026-06-01", status="normal")
    redis = open_redis(config.Stores(redis_url=f"redis://127.0.0.1:{stack.redis_port}/0"))
    cache = Cache(redis, config.Verify().cache_s)
    try:
        for prefix, k in zip(prefixes, shares, strict=True):
            numbers = list(Invoices(prefix).numbers(k))
            for i in range(0, k, 5000):
                await cache.put([(shard_of(digest(n), shards), n, answer) for n in numbers[i : i + 5000]])
    finally:
        await redis.aclose()


def _tax_service_calls(stack: Any) -> int:
    """Verification calls the simulator has answered so far (its /sandbox/stats)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{stack.sim_port}/sandbox/stats", timeout=10) as resp:
        return int(json.loads(resp.read())["calls"])


def _upload(url: str, folder: Path, n: int, prefixes: list[str]) -> dict[str, Any]:
    """``n`` invoices from 2 loadgen processes in burst mode (8 requests in flight each), their numbers made
    with ``prefixes``; what they saw."""
    argv = [sys.executable, str(LOADGEN), url, CHANNEL, SECRET, "--invoices", "100", "--concurrency", "8"]
    shares = _shares(n)
    outs = [folder / f"gen{i}.jsonl" for i in range(len(shares))]
    gens = [
        subprocess.Popen([*argv, "--burst", str(k), "--out", str(out), "--prefix", prefix])
        for k, out, prefix in zip(shares, outs, prefixes, strict=True)
    ]
    try:
        if any([g.wait() != 0 for g in gens]):  # a list: wait for every one
            raise SystemExit("a burst generator failed")
    finally:  # interrupted (Ctrl-C, a failed generator): none is left sending to a stack that is gone
        for g in gens:
            if g.poll() is None:
                g.terminate()
        for g in gens:
            try:
                g.wait(10)
            except subprocess.TimeoutExpired:
                g.kill()
    seen: dict[str, Any] = {"taken": 0, "statuses": Counter(), "cpu_s": 0.0, "maxrss_kb": []}
    for out in outs:
        lines = [json.loads(line) for line in out.read_text().splitlines()]
        seen["cpu_s"] += lines[-1]["cpu_s"]
        seen["maxrss_kb"].append(lines[-1]["maxrss_kb"])
        for row in lines[:-1]:
            seen["taken"] += row[3]
            seen["statuses"][str(row[1])] += 1
    seen["statuses"] = dict(seen["statuses"])
    print(f"burst: {seen['taken']:,} invoices taken, statuses {seen['statuses']}")
    return seen


def _wait_for_workers(stack: Any, count: int) -> None:
    """Until every worker reads the intake stream (a consumer of its group): started, imported, connected."""
    import redis

    from core import keys

    client = redis.Redis(port=stack.redis_port)

    def reading() -> bool:
        try:
            return len(client.xinfo_consumers(keys.stream(0), keys.GROUP)) >= count
        except redis.ResponseError:  # no stream or group yet
            return False

    try:
        devstack.wait_until("workers", reading)
    finally:
        client.close()


async def _wait_for_feed(database_url: str, n: int, started: float) -> tuple[float | None, dict[str, int]]:
    """Poll until ``n`` add entries are sealed (or nothing moved for 120 s); then count what the feed holds."""
    import asyncpg

    conn = await asyncpg.connect(database_url)
    # While waiting, the sealed batches' own counts (a small table; the burst makes no voids); the exact count
    # of distinct keys is taken once at the end.
    sealed_sql = "SELECT coalesce(sum(count), 0) FROM feed_batches"
    poll_s = min(5.0, max(0.2, n / 2_000_000))
    try:
        last, last_change, fed_at = -1, time.monotonic(), None
        while time.monotonic() - last_change < 120:
            sealed = await conn.fetchval(sealed_sql)
            if sealed != last:
                last, last_change = sealed, time.monotonic()
            if sealed >= n:
                fed_at = time.time()
                break
            await asyncio.sleep(poll_s)
        print(f"burst: {last:,} of {n:,} in the feed after {time.time() - started:.1f} s")
        row = await conn.fetchrow(
            "SELECT count(*) AS fed, count(DISTINCT key) AS distinct_keys FROM feed_entries"
            " WHERE kind = 'add' AND batch_seq IS NOT NULL"
        )
        # When the last invoice was committed: a feed sealed long after it waited on the sealer, not the workers.
        done = await conn.fetchrow("SELECT count(*) AS n, max(committed_at) AS last FROM invoices")
    finally:
        await conn.close()
    last_commit_s = None if done["last"] is None else done["last"].timestamp() - started
    counts = {"fed": row["fed"], "fed_distinct": row["distinct_keys"], "committed": done["n"]}
    return fed_at, {**counts, "last_commit_s": last_commit_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--round-s", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--burst", type=int, default=int(os.environ.get("BENCH_BURST", "200000")))
    parser.add_argument("--worker-profile-s", type=float, default=10.0, help="profile worker-0 this long")
    parser.add_argument(
        "--in-flight", type=int, default=config.Worker().in_flight, help="each worker's batches in flight"
    )
    parser.add_argument(
        "--cached",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the burst again with every answer cached (make bench-burst's 10 M run leaves it out: --no-cached)",
    )
    parser.add_argument(
        "--burst-only",
        action="store_true",
        help="only the sink's limit and the burst (the 10 M run: make bench-burst); saved as results/burst-N",
    )
    parser.add_argument(
        "--gateway-only",
        action="store_true",
        help="only the bare app's GET and the gateway's rows, printed and saved as results/gateway-only (to compare"
        " two revisions in one sitting)",
    )
    parser.add_argument(
        "--pg-stats",
        action="store_true",
        help="the bursts' PostgreSQL statements by execution time, µs an invoice (pg_stat_statements)",
    )
    parser.add_argument(
        "--cached-only", action="store_true", help="with --burst-only: only the burst with every answer cached"
    )
    args = parser.parse_args()
    campaign = bench_campaign(ROOT / ".data" / "bench-campaign")
    if args.gateway_only:
        gateway_only(campaign, args)
        return
    if args.burst_only:
        burst_only(campaign, args)
        return
    result: dict[str, Any] = {"round_s": args.round_s, "rounds": args.rounds, "cores": _cores()}
    with bench_stack(False, campaign=campaign, extra_env=NO_SHEDDING) as stack:
        stack.start_gateway(2)
        result["limits"] = machine_limits(stack, args)
        result["gateway"] = gateway(stack, args)
    result.update(bursts(campaign, args))
    files = {**{f"gateway, {k} requests": g["profile"] for k, g in result["gateway"].items()}}
    files["worker during the burst"] = result["burst"]["profile"]
    if "burst_cached" in result:
        files["worker during the burst, every answer cached"] = result["burst_cached"]["profile"]
    result["profiles"] = {what: {"file": f, **profile.top(ROOT / f)} for what, f in files.items()}
    from benchmarks.pipeline_report import markdown

    save("pipeline", "Pipeline against this machine's limits", result, markdown)


def gateway_only(campaign: Path, args: argparse.Namespace) -> None:
    """The bare app's GET, then the gateway's single- and 100-invoice rows, as ``make bench`` has them."""
    from benchmarks.pipeline_report import gateway_cpu_us

    result: dict[str, Any] = {"round_s": args.round_s, "rounds": args.rounds, "cores": _cores()}
    with bench_stack(False, campaign=campaign, extra_env=NO_SHEDDING) as stack:
        stack.start_gateway(2)
        bare = limits.bare_app(devstack, stack.data / "bare", 2, _wrk_rounds(stack, args), Invoices().body(100))
        result["bare_app"] = bare
        result["gateway"] = gateway(stack, args, profiles="profile-gateway-only")

    def lines(r: dict[str, Any]) -> str:
        get, rows = r["bare_app"]["get"]["rps"], [f"At {r['commit']}:", ""]
        for kind, g in r["gateway"].items():
            rows.append(
                f"- {kind}: {median_of(g['full'], 'accepted_per_s'):,.0f} invoices/s,"
                f" {median_of(g['full'], 'rps') / get:.1%} of the bare app's GET ({get:,.0f} req/s),"
                f" gateway {gateway_cpu_us(g):,.0f} µs of CPU a request, p99 at 70%"
                f" {median_of(g['paced'], 'p99_us') / 1000:.1f} ms, its processes meanwhile waiting for a core"
                f" {median_of(g['paced'], 'gateway_waited'):.2f} cores (the machine's share of that tail)"
            )
        return "\n".join(rows) + "\n"

    result["commit"] = commit()
    save("gateway-only", "The gateway's rows of make bench alone", result, lines)


def burst_only(campaign: Path, args: argparse.Namespace) -> None:
    """The burst on its own, beside the sink's COPY + upsert limit measured on a stack of its own first (its
    rows would otherwise be counted in the burst's feed). The commit is the one the run started at."""
    result: dict[str, Any] = {"cores": _cores(), "commit": commit()}
    with bench_stack(False, campaign=campaign, extra_env=NO_SHEDDING) as stack:
        result["sink"] = limits.sink_rows(stack.env["GATEWAY_DATABASE_URL"], 5000, rounds=args.rounds)
    result.update(bursts(campaign, args))
    from benchmarks.pipeline_report import burst_markdown

    title = f"Burst of {args.burst:,} invoices to the sealed feed, at {result['commit']}"
    save(f"burst-{args.burst}", title, result, burst_markdown)


def bursts(campaign: Path, args: argparse.Namespace) -> dict[str, Any]:
    """The burst with the simulator at its default latency, then on a fresh stack with every answer cached."""
    out = {}
    env = {**NO_SHEDDING, "GATEWAY_WORKER_IN_FLIGHT": str(args.in_flight)}
    kinds = (("burst", False), ("burst_cached", True))[: 2 if args.cached else 1]
    for key, cached in kinds[1:] if args.cached_only else kinds:
        with bench_stack(True, campaign=campaign, extra_env=env, workers=2, pg_stats=args.pg_stats) as stack:
            out[key] = burst(stack, args, cached)
    return out


def _cores() -> int:
    return os.cpu_count() or 0


if __name__ == "__main__":
    main()
