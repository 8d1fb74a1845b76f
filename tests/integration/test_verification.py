"""Verification against the simulator: re-checks, the circuit breaker, leases of re-check items."""

from __future__ import annotations

import asyncio
import random
import signal
import threading
import time
from typing import Any

from prometheus_client import REGISTRY

from core import settings as config
from core.settings import Settings
from core.stores import open_redis
from loadtest import sample
from loadtest.client import SignedClient
from workers.cli import run_worker
from workers.recheck import Rechecks, item


def test_while_the_tax_service_is_down_invoices_wait_then_finish(
    stack: Any, settings: Settings, channel: SignedClient, drain: Any, wait_for: Any
) -> None:
    drain()
    _, simulator = next((n, p) for n, p in stack.procs if n == "simulator" and p.poll() is None)
    simulator.send_signal(signal.SIGTERM)
    simulator.wait(10)
    rng = random.Random()
    keys = [r["key"] for r in channel.upload([sample.invoice(rng) for _ in range(6)]).json()["results"]]
    quick = config.replace(settings, breaker_failures=3, breaker_cooldown_s=0.5, verify_error_retries=1)
    done: list[int] = []
    worker = threading.Thread(target=lambda: done.append(asyncio.run(run_worker(quick, True, False))))
    worker.start()
    try:
        # The breaker opens; the invoices wait for their re-check instead of failing.
        wait_for(lambda: REGISTRY.get_sample_value("worker_verify_breaker_open") == 1, 20)
        assert {channel.status(k).json()["status"] for k in keys} == {"accepted"}
    finally:
        stack.start_simulator()
    worker.join(60)
    assert not worker.is_alive()
    assert {channel.status(k).json()["status"] for k in keys} == {"eligible"}


def test_a_taken_recheck_item_comes_back_when_its_lease_ends(settings: Settings) -> None:
    scratch = config.replace(settings, redis_url=settings.stores.redis_url.rsplit("/", 1)[0] + "/3")

    async def run() -> tuple[int, int, int]:
        redis = open_redis(scratch.stores)
        try:
            await redis.flushdb()
            rechecks = Rechecks(redis, 1, lease_s=0.3)
            await redis.zadd("{s00}:recheck", {item(0, b"invoice"): 0})
            taken_at = time.monotonic()  # before the take: its lease starts after this (it read before the take: flaky)
            first = await rechecks.take_due(10)
            again = await rechecks.take_due(10)  # leased: nobody else takes it
            later = await rechecks.take_due(10)
            while not later and time.monotonic() - taken_at < 5:  # the taker died: the lease ends
                await asyncio.sleep(0.02)
                later = await rechecks.take_due(10)
            assert time.monotonic() - taken_at >= 0.3  # not before the lease's end
            await redis.flushdb()
            return sum(map(len, first.values())), sum(map(len, again.values())), sum(map(len, later.values()))
        finally:
            await redis.aclose()

    assert asyncio.run(run()) == (1, 0, 1)


def test_an_undecodable_entry_goes_to_the_dead_letters_and_the_worker_goes_on(
    settings: Settings, channel: SignedClient, drain: Any
) -> None:
    from core import keys

    async def plant() -> None:
        redis = open_redis(settings.stores)
        try:
            await redis.xadd(keys.stream(0), {"~channel": "demo-channel", "~at": "1", "26340000000000000001": b"\xc1"})
        finally:
            await redis.aclose()

    asyncio.run(plant())
    good = channel.upload([sample.invoice(random.Random())]).json()["results"][0]["key"]
    drain()
    assert channel.status(good).json()["status"] == "eligible"

    async def letters() -> list[Any]:
        redis = open_redis(settings.stores)
        try:
            return list(await redis.xrange(keys.dead_letters(0)))
        finally:
            await redis.aclose()

    reasons = [fields[b"~reason"].decode() for _, fields in asyncio.run(letters())]
    assert any(r.startswith("undecodable entry") for r in reasons)


def test_an_entry_that_keeps_failing_goes_to_the_dead_letters_after_its_deliveries(settings: Settings) -> None:
    from core import keys
    from workers import stream

    scratch = config.replace(settings, redis_url=settings.stores.redis_url.rsplit("/", 1)[0] + "/4")

    async def run() -> tuple[int, int, int]:
        redis = open_redis(scratch.stores)
        try:
            await redis.flushdb()
            await stream.ensure_groups(redis, 1)
            entry = await redis.xadd(keys.stream(0), {"~channel": "c", "~at": "1"})
            await redis.xreadgroup(keys.GROUP, "ghost", {keys.stream(0): ">"})  # delivered once, never acked
            for _ in range(4):
                await redis.xclaim(keys.stream(0), keys.GROUP, "ghost", 0, [entry])  # and again, and again
            batch = await stream.claim_idle(redis, "me", 1, 0, 10, max_deliveries=5)
            await stream.settle(redis, batch, [], [])
            dead, left = await redis.xlen(keys.dead_letters(0)), await redis.xlen(keys.stream(0))
            await redis.flushdb()
            return len(batch.dead), dead, left
        finally:
            await redis.aclose()

    assert asyncio.run(run()) == (1, 1, 0)
