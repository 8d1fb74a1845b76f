"""The tax service's limits: all workers together keep to its QPS, and an invoice is verified only once."""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Iterator
from typing import Any

import httpx
import redis as redis_sync

from core import keys
from core.settings import Settings
from deploy import devstack
from loadtest import sample
from loadtest.client import SignedClient

QPS = 10


@contextlib.contextmanager
def simulator(stack: Any, **settings: float) -> Iterator[str]:
    """A simulator of its own (``QPS=10`` sets GATEWAY_SIMULATOR_QPS): its base URL while the test runs."""
    port = devstack.free_port()
    env = {f"GATEWAY_SIMULATOR_{name}": str(value) for name, value in settings.items()}
    proc = stack.start_simulator(port, env, name=f"simulator-{port}")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


def run_workers(stack: Any, sim_url: str, n: int) -> None:
    """``n`` burst workers at once, against the simulator at ``sim_url``, all sharing the QPS."""
    env = {
        "GATEWAY_VERIFY_URL": sim_url,
        "GATEWAY_VERIFY_QPS": str(QPS),
        "GATEWAY_VERIFY_RECHECK_S": "0.2,0.4",
        "GATEWAY_VERIFY_ERROR_RETRIES": "1",
        "GATEWAY_INFLIGHT_GRACE_S": "0",
    }
    workers = [
        stack._spawn(f"qps-worker-{i}", [str(devstack.VENV_BIN / "gateway-worker"), "run", "--burst"], env=env)
        for i in range(n)
    ]
    for w in workers:
        assert w.wait(120) == 0


def test_workers_together_never_exceed_the_tax_services_qps_and_verify_each_invoice_once(
    stack: Any, settings: Settings, channel: SignedClient, drain: Any, sql: Any
) -> None:
    drain()  # what other tests left queued is verified by the ordinary simulator, not counted here
    with simulator(stack, QPS=QPS, MEDIAN_MS=20, P99_MS=80) as sim:
        rng = random.Random()
        invoices = [sample.invoice(rng) for _ in range(40)]
        keys_ = [r["key"] for r in channel.upload(invoices).json()["results"]]
        r = redis_sync.Redis.from_url(settings.stores.redis_url)
        queued = [(shard, fields) for shard in range(4) for _, fields in r.xrevrange(keys.stream(shard), count=200)]
        started = time.monotonic()
        run_workers(stack, sim, 2)
        took = time.monotonic() - started
        stats = httpx.get(sim + "/sandbox/stats").json()
        assert stats["refused"] == 0
        assert stats["max_per_second"] <= QPS
        assert stats["calls"] == 40  # once each, though two workers raced for them
        assert took >= (40 - QPS) / QPS  # the pace, not luck: 40 calls at 10/s need 3 s past the first second
        assert {r["status"] for r in sql("SELECT status FROM invoices WHERE key = ANY($1)", keys_)} == {"eligible"}

        # Deliver the same entries again (as after a crash before the acknowledgement): nothing is asked again.
        for shard, fields in queued:
            r.xadd(keys.stream(shard), fields)
        assert sum(1 for _, fields in queued for k in fields if k.decode() in keys_) == 40
        run_workers(stack, sim, 1)
        assert httpx.get(sim + "/sandbox/stats").json()["calls"] == 40
        assert sql("SELECT count(*) AS n FROM invoices WHERE key = ANY($1)", keys_)[0]["n"] == 40


def test_beyond_its_qps_the_simulator_answers_429(stack: Any) -> None:
    with simulator(stack, QPS=5, MEDIAN_MS=0) as sim:
        asked = {"number": "26341234567890123456", "issue_date": "2026-03-01", "amount": "128.50"}
        started = time.monotonic()
        with httpx.Client() as client:
            answers = [client.post(sim + "/verify", json=asked) for _ in range(30)]
        took = time.monotonic() - started
        ok = [a for a in answers if a.status_code == 200]
        refused = [a for a in answers if a.status_code == 429]
        assert len(ok) + len(refused) == 30
        assert 5 <= len(ok) <= 5 * (took + 1)  # 5 in any one second
        assert refused and all(a.headers["Retry-After"] == "1" for a in refused)
