"""Prometheus plumbing shared by every process: the multiprocess merge behind ``/metrics``.

Each package defines its own metrics (gateway/metrics.py, ratelimit/metrics.py, dedup/metrics.py,
workers/metrics.py), each named with its package as prefix, so a name says who emits it. Under gunicorn every
process writes to ``PROMETHEUS_MULTIPROC_DIR`` (``Settings.metrics_dir``) and ``/metrics`` merges them all.
"""

from __future__ import annotations

import glob
import os
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess


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
    """The text exposition of every process writing to ``folder`` (of this process alone when it is "")."""
    if folder:
        return generate_latest(merged_registry(folder)), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
