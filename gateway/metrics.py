"""The gateway's Prometheus metrics, each named ``gateway_*``; labels are bounded (route, status, channel,
outcome, reason). Under gunicorn every process writes its own and ``/metrics`` merges them (core/metrics.py).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

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
DATABASE_READS = Counter(
    "gateway_database_reads_total", "Feed and status reads, by the PostgreSQL server read", ["route", "server"]
)
# Read from the stores at each scrape (gateway/ops.py): the scraping process writes the newest value, so
# "mostrecent" across processes. Redis's own metrics belong to redis_exporter; these are what the gateway saw.
FEED_NEWEST_BATCH_AGE = Gauge(
    "gateway_feed_newest_batch_age_seconds",
    "Age of the newest sealed feed batch (NaN before the first)",
    multiprocess_mode="mostrecent",
)
FEED_OLDEST_UNFED_AGE = Gauge(
    "gateway_feed_oldest_unfed_age_seconds",
    "Age of the oldest eligible invoice due in the feed and not sealed yet (0 when none waits)",
    multiprocess_mode="mostrecent",
)
REDIS_USED_MEMORY = Gauge(
    "gateway_redis_used_memory_bytes",
    "Memory Redis uses (INFO memory used_memory, read at each scrape); it never evicts, so it must not fill up",
    multiprocess_mode="mostrecent",
)
REDIS_MEMORY_LIMIT = Gauge(
    "gateway_redis_memory_limit_bytes",
    "Redis's maxmemory, or the memory of its host when maxmemory is 0 (read at each scrape)",
    multiprocess_mode="mostrecent",
)
REDIS_MEMORY_BY_FAMILY = Gauge(
    "gateway_redis_memory_bytes",
    "Redis memory by key family (rate states, nonces, caps, verified answers, stream, in-flight, filters), estimated"
    " from a sample at most once a minute (gateway/memory.py)",
    ["family"],
    multiprocess_mode="mostrecent",
)
PENDING = Gauge(
    "gateway_pipeline_pending_entries",
    "Intake entries delivered to a worker and not acknowledged yet, per shard (read at each scrape)",
    ["shard"],
    multiprocess_mode="mostrecent",
)
READING_BODY = Gauge(
    "gateway_requests_reading_body",
    "Requests whose body is still arriving (they hold no admission slot meanwhile: gateway/middleware.py)",
    multiprocess_mode="livesum",
)
CONNECTIONS_CLOSED = Counter(
    "gateway_connections_closed_total",
    "Connections the gateway closed on its own: header_timeout, body_timeout, evicted (over the cap)",
    ["reason"],
)
RATELIMIT_FAIL_OPEN = Counter(
    "gateway_ratelimit_fail_open_total", "Requests let through without rate limits because Redis did not answer"
)
CAP_RELEASE_FAILED = Counter(
    "gateway_cap_release_failed_total", "Cap slots of duplicates that could not be given back (Redis did not answer)"
)
EXPORT_PENDING = Gauge(
    "gateway_export_pending_records",
    "Outbox records neither delivered nor parked, per destination (read at each scrape; counted up to a million)",
    ["destination"],
    multiprocess_mode="mostrecent",
)
EXPORT_PARKED = Gauge(
    "gateway_export_parked_records",
    "Outbox records parked (refused by the destination), per destination (read at each scrape)",
    ["destination"],
    multiprocess_mode="mostrecent",
)
EXPORT_OLDEST_PENDING_AGE = Gauge(
    "gateway_export_oldest_pending_age_seconds",
    "Age of the oldest outbox record not delivered yet (0 when none waits), per destination (read at each scrape)",
    ["destination"],
    multiprocess_mode="mostrecent",
)
PARTITION_MONTHS_AHEAD = Gauge(
    "gateway_partition_months_ahead",
    "Months after the current one that have their partition, per partitioned table (read at each scrape)",
    ["table"],
    multiprocess_mode="mostrecent",
)
PARTITION_DEFAULT_ROWS = Gauge(
    "gateway_partition_default_rows",
    "Rows in a partitioned table's default partition: of a month that had no partition (read at each scrape)",
    ["table"],
    multiprocess_mode="mostrecent",
)
CONSOLE_LOGINS = Counter(
    "gateway_console_logins_total",
    "Console logins by outcome: ok, wrong_password, locked (refused, or locked by this failure), unknown_name,"
    " disabled",
    ["outcome"],
)
CONSOLE_ACTIONS = Counter(
    "gateway_console_actions_total",
    "Actions taken in the console (each also in the audit log): release, reject, case_open, export, ...",
    ["action"],
)
