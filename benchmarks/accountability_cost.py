"""What accountability costs the workers' sink, against another revision, in the same run (issue 14).

    .venv/bin/python benchmarks/accountability_cost.py [--against main] [--rounds 5]

The sink (``workers/sink.write``: COPY into staging and the upsert, and now also the ledger of accepted keys,
an outbox record per invoice and the daily rollups, in the same transaction) writes fresh, eligible invoices in
transactions of 50 and of 1,000, in three ways, rounds alternating so the machine's mood falls on each alike:

- ``REV``: the sink of ``--against`` (its files exported with ``git archive`` into a temporary folder);
- ``this``: this tree's sink, as ``REV``'s is called (no tallies);
- ``this + tallies``: as the workers call it, with the requests' tallies the entries carry (two parts per
  20 invoices: the request's and its claim call's).

Each round runs in a process of its own against a fresh copy of the migrated database (``CREATE DATABASE ..
TEMPLATE``), so no round finds another's keys. The upload path's share (the tally in the claim script) is
counted in Redis instructions by ``make bench-redis AGAINST=main`` (benchmarks/redis_scripts.py).
Writes benchmarks/results/accountability_cost.json and .md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import bench_stack, save  # noqa: E402

BATCHES = {50: 60, 1000: 8}  # transactions per round, by size: about 3,000 and 8,000 invoices

# Run in a child process with a tree's root first on sys.path: the same code for every revision.
CHILD = r"""
import asyncio, datetime as dt, json, sys, time
root, url, size, batches, tallies = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5] == "1"
sys.path.insert(0, root)
import asyncpg
from core.contract import Queued
from workers import sink
from workers.judge import Judgement

async def main():
    pool = await asyncpg.create_pool(url, min_size=1, max_size=1, init=sink.prepare)
    now, at_ms, work, n = dt.datetime.now(dt.UTC), int(time.time() * 1000), [], 0
    for _ in range(batches):
        batch = []
        for _ in range(size):
            n += 1
            key = f"2634199{n:013d}"
            q = Queued(key, key, "", "2026-06-01", 18800, f"9134010400000{n % 997:04d}X", "合肥示例餐饮有限公司",
                       "catering", "", f"{n:064x}", f"u{n}", f"d{n}", "b", "bench", at_ms)
            batch.append(sink.Judged(q, Judgement("verified"), now))
        work.append(batch)
    extra = []
    if tallies:
        from core import campaign
        from core.contract import TallyPart
        from core.rollup import Rollup
        rollup = Rollup.of(campaign.load(root + "/deploy/campaigns/hefei-2026.toml"))
        rows, claimed = [("received", "", "catering", 20, 376000)], [("accepted", "", "catering", 20, 0)]
        for b in range(batches):
            parts = []
            for r in range(max(1, size // 20)):
                parts.append(TallyPart(f"req-{b}-{r}", "pre", "bench", at_ms, rows))
                parts.append(TallyPart(f"req-{b}-{r}", "check:0", "bench", at_ms, claimed))
            extra.append((parts, rollup))
    started = time.perf_counter()
    for b, batch in enumerate(work):
        if tallies:
            await sink.write(pool, batch, [], 0.0, extra[b][0], extra[b][1])
        else:
            await sink.write(pool, batch, [])
    print(json.dumps(size * batches / (time.perf_counter() - started)))
    await pool.close()

asyncio.run(main())
"""


def export(rev: str, into: Path) -> Path:
    """The files of ``rev``, as ``git archive`` gives them: a tree of its own, not a worktree."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


async def fresh_database(admin_url: str, name: str, template: str | None = "gateway") -> str:
    """Database ``name`` made again, a copy of ``template`` (the migrated one), or empty when it is None."""
    import asyncpg

    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {name}")
        await conn.execute(f"CREATE DATABASE {name}" + (f" TEMPLATE {template}" if template else ""))
    finally:
        await conn.close()
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


def one_round(root: Path, url: str, size: int, tallies: bool) -> float:
    argv = [sys.executable, "-c", CHILD, str(root), url, str(size), str(BATCHES[size]), "1" if tallies else "0"]
    done = subprocess.run(argv, capture_output=True, text=True, cwd=root)
    if done.returncode != 0:
        raise RuntimeError(done.stderr)
    return float(json.loads(done.stdout))


def markdown(r: dict[str, Any]) -> str:
    rev = r["against"]
    lines = [
        f"`workers/sink.write` of fresh eligible invoices, {r['rounds']} rounds each, alternating, each in a fresh"
        f" copy of the database; against {rev} ({r['against_commit']}). Rows/s, median (every round).\n",
        f"| transaction | {rev} | this | this + tallies | this / {rev} | this + tallies / {rev} |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for size, m in r["sizes"].items():
        old, new, full = (statistics.median(m[k]) for k in ("against", "this", "this + tallies"))
        rounds = {k: ", ".join(f"{v:,.0f}" for v in m[k]) for k in m}
        lines.append(
            f"| {size} invoices | {old:,.0f} ({rounds['against']}) | {new:,.0f} ({rounds['this']}) |"
            f" {full:,.0f} ({rounds['this + tallies']}) | {new / old:.0%} | {full / old:.0%} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--against", default="main")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", args.against], capture_output=True, text=True
    )
    sizes: dict[int, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory() as tmp, bench_stack(full=False, name="bench-cost") as stack:
        old_root = export(args.against, Path(tmp))
        admin = stack.env["GATEWAY_DATABASE_URL"].rsplit("/", 1)[0] + "/postgres"
        n = 0
        for size in BATCHES:
            found: dict[str, list[float]] = {"against": [], "this": [], "this + tallies": []}
            for _ in range(args.rounds):
                for label, root, tallies in (
                    ("against", old_root, False),
                    ("this", ROOT, False),
                    ("this + tallies", ROOT, True),
                ):
                    n += 1
                    url = asyncio.run(fresh_database(admin, f"bench_cost_{n}"))
                    found[label].append(one_round(root, url, size, tallies))
            sizes[size] = found
    result = {"against": args.against, "against_commit": commit.stdout.strip(), "rounds": args.rounds, "sizes": sizes}
    save("accountability_cost", "What accountability costs the sink", result, markdown)


if __name__ == "__main__":
    main()
