"""The verification simulator's own CPU per call (issue 19): what the simulated tax service takes from the
pipeline it shares the machine with.

    .venv/bin/python benchmarks/simulator_cost.py [--calls 6000] [--rounds 3] [--concurrency 32] [--against REV]

Starts ``gateway-worker simulator`` at its default latency (median 5 ms, p99 40 ms, as the benchmarks' stacks run
it) and makes ``--calls`` calls to its ``POST /verify``, ``--concurrency`` at a time, with the workers' own client
(workers/http1.py); the simulator's CPU (``/proc``) over a round divided by its calls. With ``--against REV`` the
simulator of that revision (a temporary git worktree, this environment's packages) runs too, round for round
alternating with this tree's, so both see the same machine. Writes benchmarks/results/simulator-cost.*.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import commit, save, simulator, worktree  # noqa: E402
from benchmarks.procs import cpu_s  # noqa: E402
from benchmarks.verify_client import verify_body  # noqa: E402


async def _calls(url: str, calls: int, concurrency: int) -> float:
    """Make the calls; the wall seconds they took."""
    from workers.http1 import Origin

    origin = Origin(url, timeout_s=5)
    slots = asyncio.Semaphore(concurrency)

    async def one(i: int) -> int:
        async with slots:
            return (await origin.post("/verify", verify_body(i)))[0]

    try:
        await asyncio.gather(*(one(i) for i in range(200)))  # connections open, code warm
        started = time.monotonic()
        statuses = await asyncio.gather(*(one(i) for i in range(calls)))
        if set(statuses) != {200}:
            raise RuntimeError(f"unexpected answers: {sorted(set(statuses))}")
        return time.monotonic() - started
    finally:
        await origin.close()


def one_round(tree: Path, calls: int, concurrency: int) -> dict[str, float]:
    import uvloop

    with simulator(tree, median_ms=5, p99_ms=40) as (url, pid):
        uvloop.run(_calls(url, 200, concurrency))  # the simulator's own start-up and warm-up, not counted
        before = cpu_s([pid])
        wall_s = uvloop.run(_calls(url, calls, concurrency))
        spent = cpu_s([pid]) - before
    return {"us_per_call": spent / calls * 1e6, "calls_per_s": calls / wall_s, "cores": spent / wall_s}


def markdown(r: dict[str, Any]) -> str:
    lines = [
        f"{r['calls']:,} calls a round, {r['concurrency']} at a time, simulator latency median 5 ms / p99 40 ms, "
        f"the simulator's CPU per call (median of {r['rounds']} rounds; rounds in brackets).",
        "",
        "| simulator | µs of its CPU per call | calls/s | its cores |",
        "| --- | --- | --- | --- |",
    ]
    for name, runs in r["trees"].items():
        us = [x["us_per_call"] for x in runs]
        rate = statistics.median(x["calls_per_s"] for x in runs)
        cores = statistics.median(x["cores"] for x in runs)
        shown = " / ".join(f"{x:.0f}" for x in us)
        lines.append(f"| {name} | {statistics.median(us):.0f} ({shown}) | {rate:,.0f} | {cores:.2f} |")
    return "\n".join([*lines, ""])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=6000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--against", metavar="REV", help="also measure this git revision's simulator")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        paths = {f"this tree, at {commit()}": ROOT}
        if args.against:
            paths[f"at {commit(args.against)}"] = stack.enter_context(worktree(args.against))
        trees: dict[str, list[dict[str, float]]] = {name: [] for name in paths}
        for _ in range(args.rounds):
            for name, tree in paths.items():
                trees[name].append(one_round(tree, args.calls, args.concurrency))
    result = {"calls": args.calls, "concurrency": args.concurrency, "rounds": args.rounds, "trees": trees}
    save("simulator-cost", "The verification simulator's CPU per call", result, markdown)


if __name__ == "__main__":
    main()
