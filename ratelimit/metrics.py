"""Admission metrics: shed requests, requests in flight, the pipeline's saturation, backlog and drain."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

SHED = Counter("gateway_shed_requests_total", "Requests refused before their body was read", ["reason", "channel"])
CONCURRENCY_LIMIT = Gauge(
    "gateway_concurrency_limit",
    "Requests in flight the processes allow (adapts to latency)",
    multiprocess_mode="livesum",
)
IN_FLIGHT = Gauge("gateway_requests_in_flight", "Requests being handled", multiprocess_mode="livesum")
SATURATED = Gauge("gateway_admission_saturated", "1 while the pipeline behind is saturated", multiprocess_mode="max")
BACKLOG = Gauge("pipeline_stream_entries", "Entries waiting in the intake streams", multiprocess_mode="max")
OLDEST_AGE = Gauge(
    "pipeline_oldest_entry_age_seconds", "Age of the oldest unprocessed intake entry", multiprocess_mode="max"
)
DRAIN = Gauge(
    "pipeline_drain_invoices_per_second", "Invoices the workers process per second", multiprocess_mode="livesum"
)
