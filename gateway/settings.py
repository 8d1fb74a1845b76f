"""Every setting of every process, read from the environment once.

Each field is read from ``GATEWAY_<FIELD NAME IN UPPER CASE>``. An unknown ``GATEWAY_*`` variable is an
error rather than silently ignored, so a typo cannot leave a default in force. The README's configuration
table lists the same fields.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Annotated

import msgspec

PREFIX = "GATEWAY_"


class SettingsError(ValueError):
    """The environment holds a setting that is unknown or of the wrong type."""


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    redis_url: str = "redis://127.0.0.1:6390/0"
    database_url: str = "postgresql://gateway@127.0.0.1:5440/gateway"
    verify_url: str = "http://127.0.0.1:8090"
    campaign_file: str = "deploy/campaigns/hefei-2026.toml"

    # Request shape.
    max_body_bytes: int = 1024 * 1024
    # At most 3,900: the scripts hand Redis up to 2 values per invoice in one call (the claims' HSET, the
    # limits' MGET), and Redis's Lua unpacks at most 8,000.
    max_invoices: Annotated[int, msgspec.Meta(ge=1, le=3_900)] = 500

    # Authentication.
    clock_skew_s: int = 300
    nonce_ttl_s: int = 600
    clients_refresh_s: float = 30.0

    # Keys of the gateway's own signatures: receipts, and the person hash of the feed. No default: the
    # gateway refuses to start without them (the dev stack sets its own).
    receipt_secret: str = ""
    person_secret: str = ""

    # Timeouts of the gateway's calls to its stores.
    redis_timeout_ms: int = 500
    # The rate-limit call gets less: past it the limits fail open (caps and dedup fail closed).
    ratelimit_timeout_ms: int = 50
    database_timeout_ms: int = 2000

    # Load shedding (ratelimit/shed.py, ratelimit/pipeline.py).
    # Requests in flight per process: the limit adapts between min_in_flight and max_in_flight to keep the
    # slowest request of each 250 ms under target_latency_ms (0: a fixed limit of max_in_flight). The floor is
    # the concurrency the capacity is measured at (8 requests over 2 processes, benchmarks/overload_bench.py):
    # on a shared machine, latency rises with other users' load whatever this process admits, and a limit
    # cut below that floor lost goodput and fairness without bringing the p99 under the target (measured).
    max_in_flight: int = 8
    min_in_flight: int = 4
    target_latency_ms: float = 80.0
    # A request of a channel holding less than its weighted share waits this long for a slot before its 503.
    fair_wait_ms: float = 25.0
    busy_share: float = 0.5
    shed_high_age_s: float = 10.0
    shed_low_age_s: float = 2.0
    shed_high_backlog: int = 50_000
    shed_low_backlog: int = 5_000
    processes: int = 1  # set by gunicorn's config to its worker count

    # Graceful shutdown (gateway/server.py): after SIGTERM, /readyz answers 503 and the process goes on
    # serving this long before it closes its listener, so load balancers stop sending to it first.
    drain_delay_s: float = 5.0

    # Feed.
    feed_max_limit: int = 100
    feed_max_wait_s: float = 30.0

    # Workers.
    worker_batch: int = 50
    worker_block_ms: int = 200
    worker_verify_concurrency: int = 64
    verify_timeout_ms: int = 3000
    # Attempts of one verification call on 5xx, 429 and timeouts (exponential backoff with jitter from 50 ms).
    verify_call_attempts: int = 3
    # "Not found" is checked again after these delays (seconds, comma-separated) before it is final: a new
    # invoice reaches the tax system late. Production: hours.
    verify_recheck_s: str = "2,10,30"
    # A verification that keeps failing (after its attempts) is tried again this many times, backing off.
    verify_error_retries: int = 5
    # Circuit breaker: open when this many of the last 20 calls failed, for this long (entries wait meanwhile).
    breaker_failures: int = 10
    breaker_cooldown_s: float = 5.0
    # Calls per second to the tax service, all worker processes together (0: no cap): they share one pace
    # in Redis, so the service never sees more than this however many workers run.
    verify_qps: float = 0.0
    # How long a verified answer is kept, so that an invoice is verified once (the national platform allows
    # 5 checks per invoice a day): redeliveries, crashes and re-judging never ask again.
    verify_cache_s: int = 7 * 86400
    recheck_lease_s: float = 60.0
    # An entry delivered this many times without being committed goes to the dead letters.
    worker_max_deliveries: int = 5
    # Entries a worker read but did not acknowledge for this long are taken over by another (it died).
    worker_claim_idle_ms: int = 30_000
    # Port of a worker's own /metrics (0: none; the dev stack's workers share the gateway's metrics folder).
    worker_metrics_port: int = 0
    seal_interval_ms: int = 500
    seal_max_entries: int = 1000
    # Committed keys stay in the in-flight hashes this long (see workers/release.py).
    inflight_grace_s: float = 30.0

    # Verification-service simulator.
    # Its latency is log-normal with this median and 99th percentile; beyond its QPS it answers 429 (0: no cap).
    simulator_median_ms: float = 5.0
    simulator_p99_ms: float = 40.0
    simulator_qps: float = 0.0

    # Logging.
    log_level: str = "info"


def from_env(environ: Mapping[str, str] | None = None) -> Settings:
    """Read the settings from ``environ`` (the process environment by default)."""
    environ = os.environ if environ is None else environ
    fields = set(Settings.__struct_fields__)
    values: dict[str, str] = {}
    for name, value in environ.items():
        if not name.startswith(PREFIX):
            continue
        field = name[len(PREFIX) :].lower()
        if field not in fields:
            raise SettingsError(f"unknown setting {name}")
        values[field] = value
    try:
        return msgspec.convert(values, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise SettingsError(f"bad setting: {exc}") from exc
