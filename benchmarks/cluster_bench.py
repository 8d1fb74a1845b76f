"""100-invoice uploads on a single Redis, on a Redis Cluster (3 primaries + 3 replicas) without WAIT, and on the
cluster with WAIT 1 (an upload ``accepted`` only once a replica has it), in the same run (``make bench-cluster``).

Each topology gets a stack of its own (PostgreSQL, gunicorn with 2 processes, no workers: the uploads' path is
what is measured), the same campaign (the sandbox's, its channel limits raised, intake and caps in 6 shards: two
per primary) and the same closed loop (benchmarks/loadgen.py, 16 requests in flight, ROUNDS rounds of SECONDS).
For each: invoices accepted per second and the requests' p50 and p99 latency (medians over the rounds), what
WAIT adds, and each Redis process's CPU seconds per 1,000 accepted invoices: how the work splits over the
primaries (and what the replicas spend following them). On two shared cores a cluster is not faster: the split
is the figure that says how it scales on hosts of its own.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import procs  # noqa: E402
from benchmarks.common import save  # noqa: E402
from benchmarks.pipeline_bench import NO_SHEDDING, bench_campaign  # noqa: E402
from deploy import devstack, rediscluster  # noqa: E402

LOADGEN = ROOT / "benchmarks" / "loadgen.py"
TOPOLOGIES = {  # name: (a cluster, GATEWAY_REDIS_MIN_REPLICAS)
    "single Redis": (False, "0"),
    "cluster, no WAIT": (True, "0"),
    "cluster, WAIT 1": (True, "1"),
}


def campaign(folder: Path, shards: int) -> Path:
    """The bench campaign (channel limits far above this machine) with ``shards`` intake and cap shards."""
    path = bench_campaign(folder)
    text, n = re.subn(r"(?m)^shards = \d+$", f"shards = {shards}", path.read_text())
    assert n == 1, "the campaign's [dedup] shards moved: update benchmarks/cluster_bench.py"
    path.write_text(text)
    return path


def stack_for(name: str, cluster: bool, replicas: str, camp: Path) -> Any:
    data = ROOT / ".data" / f"bench-cluster-{name.split(',')[0].split()[0]}-{replicas}"
    shutil.rmtree(data, ignore_errors=True)
    port = devstack.free_port
    return devstack.Stack(
        data,
        redis_port=port(),
        pg_port=port(),
        sim_port=port(),
        port=port(),
        campaign=camp,
        extra_env={**NO_SHEDDING, "GATEWAY_REDIS_MIN_REPLICAS": replicas},
        cluster_ports=rediscluster.free_ports(devstack.CLUSTER_NODES) if cluster else None,
    )


def redis_nodes(stack: Any) -> dict[str, int]:
    """Each Redis process's pid, named by its role ("primary :port", "replica :port", or "redis")."""
    pids = {name: p.pid for name, p in stack.procs if name.startswith("redis")}
    if not stack.cluster_ports:
        return {"redis": pids["redis"]}
    roles = {n.port: "primary" if n.primary else "replica" for n in rediscluster.nodes(stack.cluster_ports[0])}
    return {f"{roles[port]} :{port}": pids[f"redis-{port}"] for port in stack.cluster_ports}


def one_round(stack: Any, seconds: float, out: Path) -> dict[str, Any]:
    nodes = redis_nodes(stack)
    cpu0 = {name: procs.cpu_s([pid]) for name, pid in nodes.items()}
    argv = [sys.executable, str(LOADGEN), f"http://127.0.0.1:{stack.port}", "demo-channel", "demo-channel-secret"]
    argv += ["--concurrency", "16", "--seconds", str(seconds), "--invoices", "100", "--out", str(out)]
    subprocess.run(argv, check=True, capture_output=True)
    cpu = {name: procs.cpu_s([pid]) - cpu0[name] for name, pid in nodes.items()}
    lines = out.read_text().splitlines()
    answers = [json.loads(line) for line in lines[:-1]]
    latencies = sorted(a[2] for a in answers)
    accepted = sum(a[3] for a in answers)
    return {
        "invoices_per_s": accepted / seconds,
        "statuses": sorted({a[1] for a in answers}),
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        "redis_cpu_s_per_1000": {name: 1000 * s / max(accepted, 1) for name, s in cpu.items()},
    }


def measure(name: str, cluster: bool, replicas: str, camp: Path, rounds: int, seconds: float) -> dict[str, Any]:
    stack = stack_for(name, cluster, replicas, camp)
    try:
        stack.start_stores()
        stack.start_gateway(processes=2)
        found = [one_round(stack, seconds, stack.data / f"round-{i}.jsonl") for i in range(rounds)]
    finally:
        stack.stop()
        shutil.rmtree(stack.data, ignore_errors=True)
    cpu_names = found[0]["redis_cpu_s_per_1000"]
    return {
        "rounds": found,
        "invoices_per_s": statistics.median(r["invoices_per_s"] for r in found),
        "p50_ms": statistics.median(r["p50_ms"] for r in found),
        "p99_ms": statistics.median(r["p99_ms"] for r in found),
        "redis_cpu_s_per_1000": {n: statistics.median(r["redis_cpu_s_per_1000"][n] for r in found) for n in cpu_names},
    }


def markdown(result: dict[str, Any]) -> str:
    base = result["topologies"]["single Redis"]
    rows = ["| topology | invoices/s (rounds) | ratio to single | p50 ms | p99 ms | Redis CPU s per 1,000 invoices |"]
    rows.append("| --- | --- | --- | --- | --- | --- |")
    for name, t in result["topologies"].items():
        rounds = " / ".join(f"{r['invoices_per_s']:,.0f}" for r in t["rounds"])
        split = "; ".join(f"{n} {s:.3f}" for n, s in sorted(t["redis_cpu_s_per_1000"].items()))
        ratio = t["invoices_per_s"] / base["invoices_per_s"]
        rows.append(
            f"| {name} | {t['invoices_per_s']:,.0f} ({rounds}) | {ratio:.2f} | {t['p50_ms']:.1f} | {t['p99_ms']:.1f} "
            f"| {split} |"
        )
    wait, bare = result["topologies"]["cluster, WAIT 1"], result["topologies"]["cluster, no WAIT"]
    cost = 1 - wait["invoices_per_s"] / bare["invoices_per_s"]
    rows.append("")
    rows.append(
        f"WAIT 1 adds {wait['p50_ms'] - bare['p50_ms']:.1f} ms at p50 and {wait['p99_ms'] - bare['p99_ms']:.1f} ms "
        f"at p99 to a 100-invoice request (16 in flight), and costs {cost:.0%} "
        f"of the cluster's accept rate. Shards: {result['shards']}; {result['rounds']} rounds of {result['seconds']} s."
    )
    return "\n".join(rows) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--shards", type=int, default=6)
    args = parser.parse_args()
    camp = campaign(ROOT / ".data" / "bench-cluster-campaign", args.shards)
    topologies = {
        name: measure(name, cluster, replicas, camp, args.rounds, args.seconds)
        for name, (cluster, replicas) in TOPOLOGIES.items()
    }
    result = {"topologies": topologies, "shards": args.shards, "rounds": args.rounds, "seconds": args.seconds}
    save("cluster", "100-invoice uploads: single Redis, cluster, cluster with WAIT 1", result, markdown)


if __name__ == "__main__":
    main()
