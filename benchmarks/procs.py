"""What the benchmarks read about processes from /proc: trees, CPU seconds, peak memory."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    """Every descendant of ``pid`` (gunicorn's workers, PostgreSQL's backends)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        kids = parents.get(todo.pop(), [])
        found += kids
        todo += kids
    return found


def tree(pid: int) -> list[int]:
    return [pid, *children(pid)]


def cpu_s(pids: Iterable[int], reaped: bool = False) -> float:
    """User + system CPU seconds of these processes so far (those that have exited count nothing). ``reaped``: with
    the times of the children each has waited for (cutime, cstime)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(f) for f in fields[11 : 15 if reaped else 13])
    return total / TICKS


def runnable_wait_s(pids: Iterable[int]) -> float:
    """Seconds these processes' main threads have spent runnable but waiting for a core, so far
    (/proc/<pid>/schedstat, the scheduler's own count): on a busy machine, part of every request's latency."""
    total = 0
    for pid in pids:
        try:
            total += int(Path(f"/proc/{pid}/schedstat").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return total / 1e9


def tree_cpu_s(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and all its descendants so far, those that have exited included. A
    process reaped by its parent counts in the parent's times of waited-for children; one started meanwhile (a
    PostgreSQL backend of a growing pool, an autovacuum worker, a restarted gunicorn worker) counts in its own.
    Measured over a list of pids taken at the start, these had counted as other work."""
    return cpu_s(tree(pid), reaped=True)


def peak_rss_kb(pid: int) -> int:
    """The process's peak resident memory (VmHWM) since it started or since ``reset_peak``."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def reset_peak(pids: Iterable[int]) -> None:
    """Start the peak-memory count afresh (writing 5 to clear_refs, Linux 4.0+)."""
    for pid in pids:
        with contextlib.suppress(OSError):
            Path(f"/proc/{pid}/clear_refs").write_text("5")


def machine_busy_s() -> float:
    """CPU seconds the whole machine has spent busy (all cores, /proc/stat), for the share of other work."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / TICKS
