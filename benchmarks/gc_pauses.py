"""The gateway processes' cyclic-garbage collections under load: how long each one holds its process.

    .venv/bin/python benchmarks/gc_pauses.py [--rounds 3]

Runs ``pipeline_bench.py --gateway-only`` (the bare app's GET, then single- and 100-invoice uploads at full speed
and at 70%) with benchmarks/gc_probe on PYTHONPATH: every Python process of the run times its collections
(wall time, so a process the machine deschedules meanwhile counts that too). Prints the gateway's rows and, for
each gateway process (gunicorn's master among them, which serves nothing), its collections by generation: how
many, median and longest pause. Saves nothing: the gateway's rows are those of results/gateway-only.md, which
the run rewrites.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as out:
        env = {**os.environ, "PYTHONPATH": str(ROOT / "benchmarks" / "gc_probe"), "GC_PROBE_DIR": out}
        bench = [sys.executable, str(ROOT / "benchmarks" / "pipeline_bench.py"), "--gateway-only"]
        subprocess.run([*bench, "--rounds", str(args.rounds)], env=env, check=True)
        for found in sorted(Path(out).glob("gc-*.json")):
            run = json.loads(found.read_text())
            if "deploy/gunicorn" not in run["argv"]:
                continue  # the bare app's processes, the bench itself
            pauses = {int(g): [p * 1000 for p in v] for g, v in run["pauses"].items()}
            line = "; ".join(
                f"gen{g} {len(v)}, median {statistics.median(v):.1f} ms, longest {max(v):.1f}"
                for g, v in pauses.items()
                if v
            )
            print(f"gateway process ({run['tracked']:,} objects tracked): {line}")


if __name__ == "__main__":
    main()
