"""Prometheus plumbing shared by every process: the multiprocess merge behind ``/metrics``.

Each package defines its own metrics (gateway/metrics.py, ratelimit/metrics.py, dedup/metrics.py,
workers/metrics.py), each named with its package as prefix, so a name says who emits it. Under gunicorn every
process writes to ``PROMETHEUS_MULTIPROC_DIR`` (``Settings.metrics_dir``) and ``/metrics`` merges them all.
"""

from __future__ import annotations

import asyncio
import glob
import os
from collections.abc import Callable
from typing import Any, TypeVar

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess

T = TypeVar("T")


class Merged(multiprocess.MultiProcessCollector):
    """Every process's metrics from the multiprocess folder, skipping a file too short to read: a process killed
    between creating its file and sizing it (kill -9 at start) leaves 0 bytes, on which prometheus_client's own
    collector raises, and /metrics would answer 500 until someone deleted the file. Reported upstream as
    prometheus/client_python#1199 (open; the fix is proposed in #1207): drop this class once a release has it."""

    def collect(self) -> Any:
        files = [f for f in glob.glob(os.path.join(self._path, "*.db")) if os.path.getsize(f) >= 8]
        return self.merge(files, accumulate=True)  # type: ignore[no-untyped-call]


def merged_registry(folder: str) -> CollectorRegistry:
    registry = CollectorRegistry()
    Merged(registry, path=folder)  # type: ignore[no-untyped-call]
    return registry


def exposition(folder: str) -> tuple[bytes, str]:
    """The text exposition of every process writing to ``folder`` (of this process alone when it is ""), this
    process's kept updates written first."""
    flush()
    if folder:
        return generate_latest(merged_registry(folder)), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST


# How long a gateway process may keep the updates of its hottest metrics before writing them to its file
# (``keep``): what /metrics may lag behind, for those, in the other processes.
FLUSH_S = 1.0


class _Kept:
    """A metric's value whose increments are added up in the process and written to its shared file by
    ``flush``: a write to the multiprocess file (a lock, a process-id system call, the mmap) cost about 3 µs, and a
    single-invoice upload made ten. A value set (a gauge's ``set``) is written at once, after what was kept."""

    __slots__ = ("pending", "value")

    def __init__(self, value: Any) -> None:
        self.value = value
        self.pending = 0.0

    def inc(self, amount: float) -> None:
        self.pending += amount

    def set(self, value: float, timestamp: float | None = None) -> None:
        self.flush()
        self.value.set(value, timestamp)

    def get(self) -> float:
        return float(self.value.get()) + self.pending

    def set_exemplar(self, exemplar: Any) -> None:
        self.value.set_exemplar(exemplar)

    def get_exemplar(self) -> Any:
        return self.value.get_exemplar()

    def flush(self) -> None:
        if self.pending:
            amount, self.pending = self.pending, 0.0
            self.value.inc(amount)


_KEPT: list[_Kept] = []


def keep(metric: T) -> T:
    """``metric`` (a counter, a gauge or a histogram, or one of their labelled children) with its increments kept
    in this process and written by ``flush``, which a process that keeps any must call at least every
    ``FLUSH_S`` and when it stops (the gateway's lifespan does; ``/metrics`` first writes its own). Nothing to do
    outside multiprocess mode (a value in memory is as cheap)."""
    for attr in ("_value", "_sum", "_count"):
        if hasattr(metric, attr):
            setattr(metric, attr, _kept(getattr(metric, attr)))
    buckets = getattr(metric, "_buckets", None) or []
    buckets[:] = [_kept(value) for value in buckets]
    return metric


def _kept(value: Any) -> Any:
    """``value`` kept, if it is a multiprocess file's (a value kept already, or one in memory, as it is)."""
    if not getattr(value, "_multiprocess", False):
        return value
    kept = _Kept(value)
    _KEPT.append(kept)
    return kept


def flush() -> None:
    """Write every kept update of this process to its file."""
    for kept in _KEPT:
        kept.flush()


async def _flush_forever() -> None:
    while True:
        await asyncio.sleep(FLUSH_S)
        flush()


def start_flushing() -> Callable[[], None]:
    """Write this process's kept updates every ``FLUSH_S`` from now on; returns the stop, which writes them once
    more (a process that keeps any metric calls it when it stops)."""
    task = asyncio.create_task(_flush_forever())

    def stop() -> None:
        task.cancel()
        flush()

    return stop
