"""The workers' Prometheus metrics (written to the shared multiprocess folder under the dev stack)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

PROCESSED = Counter("worker_invoices_total", "Invoices judged by the workers", ["status", "reason"])
BATCH_SECONDS = Histogram("worker_batch_duration_seconds", "Time to verify, judge and commit one batch")
VERIFY_SECONDS = Histogram("worker_verify_duration_seconds", "Time of one call to the verification service")
SEALED = Counter("worker_feed_batches_sealed_total", "Feed batches sealed")
