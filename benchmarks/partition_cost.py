"""What the monthly partitions cost the workers' sink, against another revision, in the same run (issue 16).

    .venv/bin/python benchmarks/partition_cost.py [--against main] [--rounds 5]

The sink of ``--against`` writes into a database migrated with that revision's migrations (unpartitioned
tables), this tree's sink into one migrated with this tree's (partitioned by month, with ``invoice_keys`` as the
guard of exactly once): fresh, eligible invoices in transactions of 50 and of 1,000, rounds alternating, each in
a process of its own against a fresh copy of its template database (the rounds of benchmarks/
accountability_cost.py, with the requests' tallies). Writes benchmarks/results/partition_cost.json and .md.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.accountability_cost import BATCHES, export, fresh_database, one_round  # noqa: E402
from benchmarks.common import bench_stack, save  # noqa: E402

MIGRATE = (
    "import asyncio, sys; sys.path.insert(0, sys.argv[1]); from gateway.migrate import migrate;"
    " asyncio.run(migrate(sys.argv[2]))"
)


def markdown(r: dict[str, Any]) -> str:
    rev = r["against"]
    lines = [
        f"`workers/sink.write` of fresh eligible invoices with their tallies, {r['rounds']} rounds each, alternating,"
        f" each in a fresh copy of its revision's database; against {rev} ({r['against_commit']}, unpartitioned)."
        " Rows/s, median (every round).\n",
        f"| transaction | {rev} | partitioned | partitioned / {rev} |",
        "| --- | --- | --- | --- |",
    ]
    for size, m in r["sizes"].items():
        old, new = statistics.median(m["against"]), statistics.median(m["this"])
        rounds = {k: ", ".join(f"{v:,.0f}" for v in m[k]) for k in m}
        lines.append(
            f"| {size} invoices | {old:,.0f} ({rounds['against']}) | {new:,.0f} ({rounds['this']}) | {new / old:.0%} |"
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
    with tempfile.TemporaryDirectory() as tmp, bench_stack(full=False, name="bench-partitions") as stack:
        old_root = export(args.against, Path(tmp))
        admin = stack.env["GATEWAY_DATABASE_URL"].rsplit("/", 1)[0] + "/postgres"
        old_template = asyncio.run(fresh_database(admin, "template_against", None))
        subprocess.run([sys.executable, "-c", MIGRATE, str(old_root), old_template], check=True, cwd=old_root)
        n = 0
        for size in BATCHES:
            found: dict[str, list[float]] = {"against": [], "this": []}
            for _ in range(args.rounds):
                for label, root, template in (("against", old_root, "template_against"), ("this", ROOT, "gateway")):
                    n += 1
                    url = asyncio.run(fresh_database(admin, f"bench_partitions_{n}", template))
                    found[label].append(one_round(root, url, size, True))
            sizes[size] = found
    result = {"against": args.against, "against_commit": commit.stdout.strip(), "rounds": args.rounds, "sizes": sizes}
    save("partition_cost", "What monthly partitions cost the sink", result, markdown)


if __name__ == "__main__":
    main()
