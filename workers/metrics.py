"""The workers' Prometheus metrics (written to the shared multiprocess folder under the dev stack)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

PROCESSED = Counter("worker_invoices_total", "Invoices judged by the workers", ["status", "reason"])
BATCH_SECONDS = Histogram("worker_batch_duration_seconds", "Time to verify, judge and commit one batch")
SINK_BATCH = Histogram(
    "worker_sink_batch_invoices",
    "Invoices written in one sink transaction (it grows with the backlog: a read takes what is queued, up to "
    "GATEWAY_WORKER_BATCH entries per shard)",
    buckets=(1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000),
)
SINK_ROWS = Counter("worker_sink_rows_total", "Invoice rows inserted by the sink (a batch delivered twice adds none)")
VERIFY_SECONDS = Histogram("worker_verify_duration_seconds", "Time of one call to the verification service")
DEAD_LETTERS = Counter("worker_dead_letters_total", "Stream entries set aside as dead letters")
BATCH_RETRIES = Counter(
    "worker_batch_retries_total",
    "Batches tried again by the same worker after a store was down, slow or failing over (no delivery spent)",
)
SEALED = Counter("worker_feed_batches_sealed_total", "Feed batches sealed")
LAST_SEALED = Gauge(
    "worker_feed_last_sealed_timestamp_seconds",
    "When the newest feed batch was sealed (Unix time)",
    multiprocess_mode="max",
)
DEFERRED = Counter("worker_rechecks_scheduled_total", "Invoices scheduled to be verified again, by answer", ["outcome"])
REVERSAL_CHECKS = Counter(
    "worker_reversal_checks_total",
    "Another channel's reversals asked about at the tax service, by answer (found, not_found, error, unavailable)",
    ["outcome"],
)
VERIFY_CALLS = Counter("worker_verify_calls_total", "Calls to the verification service, by HTTP status", ["status"])
BREAKER_OPEN = Gauge(
    "worker_verify_breaker_open", "1 while the verification circuit breaker is open", multiprocess_mode="max"
)
STAGE_SECONDS = Histogram(
    "worker_stage_duration_seconds",
    "Time of one batch's stage: cache (verified answers, and which invoices were committed before), verify, risk,"
    " sink (the transaction), settle (ack)",
    ["stage"],
)
EXPORT_REQUESTS = Counter(
    "worker_export_requests_total", "Requests of the outbox relay, by destination and answer", ["destination", "status"]
)
EXPORT_RECORDS = Counter(
    "worker_export_records_total",
    "Outbox records settled by the relay, by destination and outcome (delivered, parked)",
    ["destination", "outcome"],
)
EXPORT_DELIVERY_SECONDS = Histogram(
    "worker_export_delivery_seconds",
    "From a change (its outbox record's creation) to its delivery, by destination",
    ["destination"],
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
)
EXPORT_BREAKER_OPEN = Gauge(
    "worker_export_breaker_open", "1 while the relay's breaker is open", ["destination"], multiprocess_mode="max"
)
DAYS_CLOSED = Counter("worker_reports_closed_total", "Daily reports closed: written as files and sent")
REVERIFIED = Counter(
    "worker_reverify_total",
    "Invoices verified again before payout (workers/reverify.py), by outcome: confirmed, withdrawn (reversed or"
    " changed), unanswered (asked again later)",
    ["outcome"],
)
