"""SIGTERM under load: the gateway turns /readyz to 503 while it still serves, finishes the requests in flight
(an upload whose body is still arriving when the listener closes), answers long polls early rather than be held
by them, and exits within its grace period; a worker finishes and acknowledges its batch and exits; every
invoice answered ``accepted`` ends in the database."""

from __future__ import annotations

import random
import secrets
import signal
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import redis

from channel_client.signing import sign_headers
from core import keys
from loadtest import sample
from loadtest.client import SignedClient

DRAIN_DELAY_S = 2.0
GRACEFUL_TIMEOUT_S = 20  # deploy/gunicorn.conf.py


def test_sigterm_drains_gateway_and_worker_and_loses_no_accepted_invoice(
    stack: Any, drain: Any, sql: Any, wait_for: Any
) -> None:
    from deploy.devstack import VENV_BIN, free_port

    drain()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    gateway = stack.start_gateway(2, port, {"GATEWAY_DRAIN_DELAY_S": str(DRAIN_DELAY_S)}, name="gateway-drain")
    worker = stack._spawn("worker-drain", [str(VENV_BIN / "gateway-worker"), "run"])
    accepted: list[str] = []
    failures: list[str] = []
    readyz: list[tuple[int, bool | None]] = []
    out_of_rotation = threading.Event()  # what a load balancer does once the health check fails

    def upload(seed: int) -> None:
        rng = random.Random(seed)
        with SignedClient(base, "demo-channel", "demo-channel-secret") as channel:
            while not out_of_rotation.is_set():
                try:
                    resp = channel.upload([sample.invoice(rng) for _ in range(50)])
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))
                    return
                if resp.status_code != 202:
                    failures.append(f"{resp.status_code} {resp.text[:200]}")
                accepted.extend(r["key"] for r in resp.json()["results"] if r["status"] == "accepted")

    def health_check() -> None:
        while True:
            try:
                resp = httpx.get(f"{base}/readyz", timeout=2)
                readyz.append((resp.status_code, resp.json()["draining"]))
            except httpx.TransportError:
                readyz.append((0, None))  # the listener is closed (refused, or reset while it closed)
                return
            if resp.status_code != 200:
                out_of_rotation.set()
            time.sleep(0.05)

    threads = [threading.Thread(target=upload, args=(seed,)) for seed in range(3)]
    threads.append(threading.Thread(target=health_check))
    for t in threads:
        t.start()
    long_poll: list[tuple[int, float]] = []
    slow: list[httpx.Response] = []
    try:
        # The worker commits: it is past its start (and its signal handlers) and busy with batches.
        wait_for(lambda: len(accepted) >= 300 and _committed(sql, accepted) > 0, 30)
        worker.send_signal(signal.SIGTERM)
        gateway.send_signal(signal.SIGTERM)
        sigterm_at = time.monotonic()
        # Starts during the drain delay; its body is still arriving when the listener closes.
        straddler = threading.Thread(target=lambda: slow.append(_slow_upload(base, sigterm_at + DRAIN_DELAY_S / 2)))
        straddler.start()
        with SignedClient(base, "demo-draw", "demo-draw-secret") as draw:
            started = time.monotonic()
            status = draw.feed(after=10**12, limit=1, wait=15).status_code
            long_poll.append((status, time.monotonic() - started))
        straddler.join(30)
        assert gateway.wait(GRACEFUL_TIMEOUT_S + 5) == 0
        took_s = time.monotonic() - sigterm_at
        assert worker.wait(20) == 0
    finally:
        out_of_rotation.set()
        for t in threads:
            t.join(30)

    assert failures == [], failures[:5]
    # The long poll is answered (empty) within a second or so instead of holding the process for 15 s.
    assert long_poll[0][0] == 200 and long_poll[0][1] < 5, long_poll
    assert slow[0].status_code == 202, slow[0].text
    accepted.extend(r["key"] for r in slow[0].json()["results"] if r["status"] == "accepted")
    assert DRAIN_DELAY_S < took_s < 10, took_s
    assert readyz[0] == (200, False)
    assert (503, True) in readyz and readyz[-1] == (0, None), readyz[-5:]

    # The worker acknowledged everything it read before it exited: nothing of its consumer is pending.
    client = redis.Redis.from_url(stack.env["GATEWAY_REDIS_URL"])
    consumer = f"{socket.gethostname()}-{worker.pid}"
    try:
        for shard in range(4):  # tests/campaigns/hefei-2026-sharded.toml
            pending = client.xpending(keys.stream(shard), keys.GROUP)
            assert consumer not in {c["name"].decode() for c in pending["consumers"]}, pending
    finally:
        client.close()
    drain()
    rows = sql("SELECT key FROM invoices WHERE key = ANY($1)", accepted)
    assert len(accepted) >= 300 and {r["key"] for r in rows} == set(accepted)


def _committed(sql: Any, keys: list[str]) -> int:
    return int(sql("SELECT count(*) AS n FROM invoices WHERE key = ANY($1)", list(keys))[0]["n"])


def _slow_upload(base: str, at: float) -> httpx.Response:
    """An upload sent at ``at`` whose body arrives in three parts over about two seconds (chunked)."""
    time.sleep(max(0.0, at - time.monotonic()))
    rng = random.Random(66)
    body = orjson.dumps({"invoices": [sample.invoice(rng) for _ in range(30)]})
    headers = sign_headers(
        "demo-channel", "demo-channel-secret", "POST", "/v1/invoices", body, int(time.time()), secrets.token_hex(16)
    )

    def parts() -> Iterator[bytes]:
        third = len(body) // 3 + 1
        for i in range(3):
            if i:
                time.sleep(1.0)
            yield body[i * third : (i + 1) * third]

    return httpx.post(
        f"{base}/v1/invoices", content=parts(), headers={**headers, "Content-Type": "application/json"}, timeout=30
    )
