"""What a process pays to start: the wall time of a fresh interpreter that imports what each command imports.

    .venv/bin/python benchmarks/startup.py [--runs 9]

gunicorn's master imports the gateway's app once a start, before it forks its processes; every ``gateway-worker``
command imports its module before it does anything; the test suite starts hundreds of them.
Each row is the median of ``--runs`` fresh interpreters (``python -c "import ..."``), beside a bare interpreter
(``python -c pass``) in the same run. Saves nothing: a figure to compare two revisions in one sitting.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# What each kind of process imports before it does its work (the command's module and its branch's modules).
COMMANDS = {
    "bare interpreter": "pass",
    "the gateway's app (gunicorn's master)": "import gateway.app",
    "gateway-worker run": "import workers.cli, workers.main",
    "gateway-worker simulator": "import workers.cli, workers.simulator",
    "gateway-worker export": "import workers.cli, workers.export",
    "gateway (the operators' command)": "import gateway.cli",
}


def started_in_s(code: str) -> float:
    began = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(args.runs):  # round after round, so the machine's noise falls on every row alike
        for name, code in COMMANDS.items():
            times[name].append(started_in_s(code))
    print(f"| process | median of {args.runs} starts | runs |\n| --- | --- | --- |")
    for name, runs in times.items():
        spread = " / ".join(f"{t * 1000:.0f}" for t in sorted(runs))
        print(f"| {name} | {statistics.median(runs) * 1000:.0f} ms | {spread} |")


if __name__ == "__main__":
    main()
