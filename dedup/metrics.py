"""Dedup metrics: checks, the filter's "maybe seen", confirmed duplicates, false positives resolved, and the
filters' fill and estimated false-positive rate (refreshed from Redis at each scrape)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

CHECKED = Counter("dedup_checks_total", "Invoice keys checked for duplicates")
MAYBE = Counter("dedup_maybe_seen_total", "Keys the filter had seen that were not in flight (checked exactly)")
DUPLICATES = Counter("dedup_duplicates_total", "Confirmed duplicates, by where the earlier upload was", ["where"])
FALSE_POSITIVES = Counter("dedup_false_positives_total", "Keys the filter had seen that were new after all")
NOT_REPLICATED = Counter(
    "dedup_not_replicated_total", "Claim calls whose replicas did not acknowledge in time (the upload got 503)"
)
LEFT_FOR_RETRY = Counter("dedup_left_for_retry_total", "Claims of such uploads left for the channel's retry")
RETAKEN = Counter("dedup_retaken_total", "Claims a channel's retry took back as its own (answered accepted)")
FILL = Gauge("dedup_filter_fill_ratio", "Expected share of bits set", ["shard", "generation"], multiprocess_mode="max")
FPR = Gauge(
    "dedup_filter_estimated_false_positive_rate",
    "Estimated false-positive rate of the shard's filter (all generations)",
    ["shard"],
    multiprocess_mode="max",
)
KEYS = Gauge("dedup_filter_keys", "Keys added to a filter generation", ["shard", "generation"], multiprocess_mode="max")
CAPACITY = Gauge(
    "dedup_filter_bytes", "Size of a filter generation's bitmap", ["shard", "generation"], multiprocess_mode="max"
)
READY = Gauge(
    "dedup_filter_ready", "1 when the shard's filter is trusted to say new", ["shard"], multiprocess_mode="max"
)
