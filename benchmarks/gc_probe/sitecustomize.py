"""Loaded by every Python process started with this folder on PYTHONPATH (benchmarks/gc_pauses.py): times each
cyclic-garbage collection and writes the process's pauses by generation to GC_PROBE_DIR every 5 s."""

import gc
import json
import os
import sys
import time

_DIR = os.environ.get("GC_PROBE_DIR", "")
_started: list[float] = [0.0]
_pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
_written: list[float] = [time.monotonic()]


def _timed(phase: str, info: dict[str, int]) -> None:
    if phase == "start":
        _started[0] = time.perf_counter()
        return
    _pauses[info["generation"]].append(time.perf_counter() - _started[0])
    now = time.monotonic()
    if now - _written[0] > 5:
        _written[0] = now
        with open(os.path.join(_DIR, f"gc-{os.getpid()}.json"), "w") as out:
            json.dump({"argv": " ".join(sys.argv)[:200], "tracked": len(gc.get_objects()), "pauses": _pauses}, out)


if _DIR:
    gc.callbacks.append(_timed)
