"""Operations endpoints: liveness, readiness that follows Redis, metrics of every process."""

from __future__ import annotations

import hashlib
import random
import signal
import time
from collections.abc import Callable
from typing import Any

import httpx

from core.metrics import FLUSH_S
from loadtest import sample
from loadtest.client import SignedClient


def test_healthz_answers(base_url: str) -> None:
    assert httpx.get(f"{base_url}/healthz").status_code == 200


def test_readyz_turns_503_while_redis_is_stopped_and_200_after(stack: Any, base_url: str, wait_for: Any) -> None:
    assert httpx.get(f"{base_url}/readyz").status_code == 200
    _, redis = next((n, p) for n, p in stack.procs if n == "redis" and p.poll() is None)
    redis.send_signal(signal.SIGTERM)
    redis.wait(10)
    try:
        wait_for(lambda: httpx.get(f"{base_url}/readyz").status_code == 503, 10)
        body = httpx.get(f"{base_url}/readyz").json()
        assert body == {"ready": False, "redis": False, "postgres": True, "draining": False}
    finally:
        stack.start_redis()
    wait_for(lambda: httpx.get(f"{base_url}/readyz").status_code == 200, 15)


def test_uploads_succeed_right_after_a_redis_restart(stack: Any, base_url: str) -> None:
    """Every process's pooled Redis connections go stale with a restart; the next upload must not fail."""
    for _ in range(12):  # fill both processes' pools
        with SignedClient(base_url, "demo-channel", "demo-channel-secret") as warm:
            assert warm.upload([sample.invoice(random.Random())]).status_code == 202
    _, redis = next((n, p) for n, p in stack.procs if n == "redis" and p.poll() is None)
    redis.send_signal(signal.SIGTERM)
    redis.wait(10)
    stack.start_redis()
    for _ in range(12):
        with SignedClient(base_url, "demo-channel", "demo-channel-secret") as fresh:
            resp = fresh.upload([sample.invoice(random.Random())])
            assert resp.status_code == 202, resp.text


def test_metrics_merge_every_gateway_process(base_url: str, channel: SignedClient, wait_for: Any) -> None:
    series = 'gateway_http_requests_total{route="/healthz",status="200"}'
    before = _settled(lambda: _count(httpx.get(f"{base_url}/metrics").text, series))
    for _ in range(40):
        httpx.get(f"{base_url}/healthz")  # a new connection each time: spread over the processes
    channel.upload([sample.invoice(random.Random())])
    # Each process writes its request counts at least every FLUSH_S (core/metrics.py), /metrics's own at once.
    wait_for(lambda: _count(httpx.get(f"{base_url}/metrics").text, series) - before >= 40, 3 * FLUSH_S + 2)
    text = httpx.get(f"{base_url}/metrics").text
    assert _count(text, series) - before == 40
    assert 'gateway_invoices_total{channel="demo-channel",outcome="accepted",reason=""}' in text


def _settled(read: Callable[[], float]) -> float:
    """A count once no earlier update is still kept in a process: the same on two reads a flush apart."""
    last = read()
    while True:
        time.sleep(1.5 * FLUSH_S)
        now = read()
        if now == last:
            return now
        last = now


def _count(text: str, series: str) -> float:
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_pass_promtool_check_metrics(base_url: str, channel: SignedClient) -> None:
    """Names, types and help text of every series, as Prometheus' own linter reads them."""
    import subprocess

    channel.upload([sample.invoice(random.Random())])
    text = httpx.get(f"{base_url}/metrics").text
    lint = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    for family in (
        "gateway_http_requests_total",
        "gateway_invoices_total",
        "dedup_checks_total",
        "ratelimit_requests_in_flight",
        "ratelimit_pipeline_stream_entries",
        "gateway_store_up",
        "gateway_pipeline_pending_entries",
        "gateway_feed_oldest_unfed_age_seconds",
        "gateway_feed_newest_batch_age_seconds",
        "gateway_redis_used_memory_bytes",
        "gateway_redis_memory_limit_bytes",
    ):
        assert f"# TYPE {family} " in text


def test_a_worker_serves_its_own_metrics_when_given_a_port(stack: Any, wait_for: Any, tmp_path: Any) -> None:
    from deploy.devstack import VENV_BIN, free_port

    port = free_port()
    worker = stack._spawn(
        "worker-metrics",
        [str(VENV_BIN / "gateway-worker"), "run"],
        env={"GATEWAY_WORKER_METRICS_PORT": str(port), "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)},
    )
    try:

        def serving() -> bool:
            try:
                return "worker_verify_breaker_open" in httpx.get(f"http://127.0.0.1:{port}/metrics").text
            except httpx.HTTPError:
                return False

        wait_for(serving, 20)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(20)
    assert worker.returncode == 0


def test_feed_freshness_gauges_follow_the_sealer(base_url: str, channel: SignedClient, drain: Any, sql: Any) -> None:
    channel.upload([sample.invoice(random.Random())])
    drain()  # verifies, commits and seals: nothing eligible waits
    text = httpx.get(f"{base_url}/metrics").text
    assert _count(text, "gateway_feed_oldest_unfed_age_seconds") == 0.0
    assert 0.0 <= _count(text, "gateway_feed_newest_batch_age_seconds") < 60
    # An eligible entry the sealer has not taken for 30 s (as when sealing fails); unsealed, so removable.
    sql(
        "INSERT INTO feed_entries (key, kind, body, ready_at)"
        " VALUES ('freshness-probe', 'add', '{}', now() - '30 s'::interval)"
    )
    try:
        assert 30 <= _count(httpx.get(f"{base_url}/metrics").text, "gateway_feed_oldest_unfed_age_seconds") < 90
    finally:
        sql("DELETE FROM feed_entries WHERE key = 'freshness-probe' AND batch_seq IS NULL")


def test_redis_memory_and_its_limit_are_read_at_each_scrape(base_url: str, stack: Any) -> None:
    import redis

    text = httpx.get(f"{base_url}/metrics").text
    used, limit = _count(text, "gateway_redis_used_memory_bytes"), _count(text, "gateway_redis_memory_limit_bytes")
    info = redis.Redis(port=stack.redis_port).info("memory")
    assert 0.5 < used / info["used_memory"] < 2  # Redis's own figure, read moments apart
    assert limit == (info["maxmemory"] or info["total_system_memory"])  # the dev stack sets no maxmemory
    assert used < limit


def test_redis_memory_by_family_is_a_sample_scaled_to_the_key_count(stack: Any) -> None:
    """In a database of its own: 1,000 cap hashes and 1,000 nonces, and shard 0's stream weighed whole."""
    import asyncio

    import redis
    from redis import asyncio as aioredis

    from core import keys
    from gateway import memory

    sync = redis.Redis(port=stack.redis_port, db=15)
    sync.flushdb()
    try:
        for i in range(1000):
            person = hashlib.sha256(f"person {i}".encode()).hexdigest()  # an HMAC's hex, as the gateway's are
            sync.hset(keys.cap(0, person, "202612"), mapping={"m": 1, "d01": 1, f"i{i:020d}": "01|s"})
            sync.set(keys.nonce("c", f"n{i:016d}"), "t", ex=600)
        for i in range(300):
            sync.xadd(keys.stream(0), {"k": f"{i}" * 10})
        exact = {
            f: sum(sync.memory_usage(k, samples=0) or 0 for k in sync.scan_iter(match=m, count=1000))
            for f, m in (("caps", "{c00}:cap:*"), ("nonces", "{rl:c}:nonce:*"))
        }

        async def twice() -> tuple[dict[str, float] | None, dict[str, float] | None]:
            client = aioredis.Redis(port=stack.redis_port, db=15)
            memory._last["at"] = -memory.EVERY_S
            try:
                return await memory.due_sample(client, 1), await memory.due_sample(client, 1)
            finally:
                await client.aclose()

        found, again = asyncio.run(twice())
        assert again is None  # at most once a minute
        assert found is not None
        for family in ("caps", "nonces"):
            assert 0.6 < found[family] / exact[family] < 1.4, (family, found[family], exact[family])
        assert found["stream"] == sync.memory_usage(keys.stream(0))  # weighed, not sampled
        assert found["verified"] == found["rate_states"] == 0
    finally:
        sync.flushdb()
        sync.close()


def test_metrics_show_redis_memory_by_family(base_url: str) -> None:
    text = httpx.get(f"{base_url}/metrics").text
    assert _count(text, 'gateway_redis_memory_bytes{family="filters"}') > 0  # preallocated bitmaps
    assert 'gateway_redis_memory_bytes{family="caps"}' in text
