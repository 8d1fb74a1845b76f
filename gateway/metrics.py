"""The gateway's Prometheus metrics; labels are bounded (route, status, channel, outcome, reason).

Under gunicorn every process writes to ``PROMETHEUS_MULTIPROC_DIR`` and ``/metrics`` merges them all.
"""

from __future__ import annotations

import glob
import os
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

REQUESTS = Counter("gateway_http_requests_total", "HTTP requests answered", ["route", "status"])
LATENCY = Histogram(
    "gateway_http_request_duration_seconds",
    "Time to answer an HTTP request",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 30.0),
)
INVOICES = Counter(
    "gateway_invoices_total", "Uploaded invoices by outcome and reason", ["channel", "outcome", "reason"]
)
STORE_UP = Gauge(
    "gateway_store_up", "1 when the store answered the last readiness check", ["store"], multiprocess_mode="min"
)
REVERSALS = Counter("gateway_reversals_total", "Invoices reversed by red-letter invoices, by channel", ["channel"])
# Feed freshness, read from PostgreSQL at each scrape (gateway/ops.py): the scraping process writes the
# newest value, so "mostrecent" across processes.
FEED_NEWEST_BATCH_AGE = Gauge(
    "feed_newest_batch_age_seconds",
    "Age of the newest sealed feed batch (NaN before the first)",
    multiprocess_mode="mostrecent",
)
FEED_OLDEST_UNFED_AGE = Gauge(
    "feed_oldest_unfed_age_seconds",
    "Age of the oldest eligible invoice due in the feed and not sealed yet (0 when none waits)",
    multiprocess_mode="mostrecent",
)
REDIS_USED_MEMORY = Gauge(
    "redis_used_memory_bytes",
    "Memory Redis uses (INFO memory used_memory, read at each scrape); it never evicts, so it must not fill up",
    multiprocess_mode="mostrecent",
)
REDIS_MEMORY_LIMIT = Gauge(
    "redis_memory_limit_bytes",
    "Redis's maxmemory, or the memory of its host when maxmemory is 0 (read at each scrape)",
    multiprocess_mode="mostrecent",
)
PENDING = Gauge(
    "pipeline_pending_entries",
    "Intake entries delivered to a worker and not acknowledged yet, per shard (read at each scrape)",
    ["shard"],
    multiprocess_mode="mostrecent",
)
RATELIMIT_FAIL_OPEN = Counter(
    "gateway_ratelimit_fail_open_total", "Requests let through without rate limits because Redis did not answer"
)
CAP_RELEASE_FAILED = Counter(
    "gateway_cap_release_failed_total", "Cap slots of duplicates that could not be given back (Redis did not answer)"
)


class Merged(multiprocess.MultiProcessCollector):
    """Every process's metrics from the multiprocess folder, skipping a file too short to read: a process killed
    between creating its file and sizing it (kill -9 at start) leaves 0 bytes, on which prometheus_client's own
    collector raises, and /metrics would answer 500 until someone deleted the file. Reported upstream as
    prometheus/client_python#1199 (open; the fix is proposed in #1207): drop this class once a release has it."""

    def collect(self) -> Any:
        files = [f for f in glob.glob(os.path.join(self._path, "*.db")) if os.path.getsize(f) >= 8]
        return self.merge(files, accumulate=True)  # type: ignore[no-untyped-call]


def merged_registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    Merged(registry)  # type: ignore[no-untyped-call]
    return registry


def exposition() -> tuple[bytes, str]:
    """The text exposition of every process of the server (or of this one outside gunicorn)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return generate_latest(merged_registry()), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
