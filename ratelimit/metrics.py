"""Admission metrics: shed requests, requests in flight, the pipeline's saturation, backlog and drain."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

SHED = Counter("ratelimit_shed_requests_total", "Requests refused before their body was read", ["reason", "channel"])
CONCURRENCY_LIMIT = Gauge(
    "ratelimit_concurrency_limit",
    "Requests in flight the processes allow (adapts to latency)",
    multiprocess_mode="livesum",
)
IN_FLIGHT = Gauge("ratelimit_requests_in_flight", "Requests being handled", multiprocess_mode="livesum")
SATURATED = Gauge("ratelimit_pipeline_saturated", "1 while the pipeline behind is saturated", multiprocess_mode="max")
BACKLOG = Gauge("ratelimit_pipeline_stream_entries", "Entries waiting in the intake streams", multiprocess_mode="max")
OLDEST_AGE = Gauge(
    "ratelimit_pipeline_oldest_entry_age_seconds", "Age of the oldest unprocessed intake entry", multiprocess_mode="max"
)
DRAIN = Gauge(
    "ratelimit_pipeline_drain_invoices_per_second",
    "Invoices the workers process per second",
    multiprocess_mode="livesum",
)
