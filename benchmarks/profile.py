"""A py-spy profile of one process while a benchmark loads it, and its top costs.

The profile is py-spy's ``raw`` format (collapsed stacks: ``frame;frame;... count``), which speedscope
(https://www.speedscope.app) and flamegraph.pl open as they are.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

PY_SPY = Path(sys.executable).parent / "py-spy"
ROOT = Path(__file__).resolve().parent.parent
PROJECT = ("gateway/", "ratelimit/", "dedup/", "workers/")


@contextlib.contextmanager
def record(
    pid: int, out: Path, seconds: float, nonblocking: bool = False, subprocesses: bool = False
) -> Iterator[None]:
    """Sample ``pid`` (with ``subprocesses``: and its children, as one profile) for ``seconds`` (100 samples a
    second; the process is paused for each unless ``nonblocking``) into ``out``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    argv = [str(PY_SPY), "record", "--pid", str(pid), "--duration", f"{max(1, int(seconds))}", "--rate", "100"]
    argv += ["--nonblocking"] if nonblocking else []
    argv += ["--subprocesses"] if subprocesses else []
    spy = subprocess.Popen([*argv, "--format", "raw", "--output", str(out)], stdout=subprocess.DEVNULL)
    try:
        yield
    finally:
        if spy.wait(timeout=seconds + 30) != 0:
            print(f"py-spy could not profile process {pid}: no profile this run", file=sys.stderr)


def top(path: Path, n: int = 12) -> dict[str, Any]:
    """The functions that hold the CPU themselves (self), and the project's functions with what they call
    (inclusive), each as a share of the samples."""
    if not path.exists():  # py-spy could not attach (no ptrace permission, e.g. in some containers)
        return {"samples": 0, "self": [], "inclusive": []}
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        samples = int(count)
        raw = stack.split(";")
        if raw[0].startswith("process ") and not raw[1].startswith("process "):
            continue  # the parent of --subprocesses (gunicorn's master), waiting for signals
        frames = [_short(f) for f in raw]
        total += samples
        own[frames[-1][0]] += samples
        for name, where in set(frames):
            if where.startswith(PROJECT):
                inclusive[name] += samples
    share = (lambda c: [(f, round(k / total, 4)) for f, k in c.most_common(n)]) if total else (lambda c: [])
    return {"samples": total, "self": share(own), "inclusive": share(inclusive)}


def _short(frame: str) -> tuple[str, str]:
    """``func (/long/path/site-packages/pkg/mod.py:12)`` -> (``func (pkg/mod.py)``, ``pkg/mod.py``)."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", f"{ROOT}/", "/lib/python3.11/"):
        if marker in where:
            where = where.split(marker, 1)[1]
            break
    return f"{name} ({where})", where
