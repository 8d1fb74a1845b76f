"""The claim + enqueue script on the real Redis: atomic, and safe to retry."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import msgspec

from dedup.claim import Claimer
from gateway import campaign as campaigns
from gateway import keys
from gateway.model import Invoice
from gateway.settings import Settings
from gateway.stores import open_redis
from gateway.validate import check
from loadtest import sample


def packed_invoices(settings: Settings, n: int) -> list[tuple[str, bytes]]:
    camp = campaigns.load(settings.campaign_file)
    rng = random.Random()
    items = []
    for _ in range(n):
        q = check(msgspec.convert(sample.invoice(rng), Invoice, strict=False), camp, "demo-channel", "k", 1)
        items.append((q.key, msgspec.msgpack.encode(q)))  # type: ignore[union-attr]
    return items


def test_retried_call_answers_accepted_again_and_enqueues_once(settings: Settings, drain: Any) -> None:
    items = packed_invoices(settings, 3)

    async def twice() -> tuple[list[str | None], list[str | None], int, int]:
        redis = open_redis(settings)
        try:
            claimer = Claimer(redis)
            before = await redis.xlen(keys.STREAM)
            first = await claimer.claim_and_enqueue("demo-channel", 1, "req-retry-1", items)
            second = await claimer.claim_and_enqueue("demo-channel", 1, "req-retry-1", items)
            other = await claimer.claim_and_enqueue("demo-channel", 1, "req-retry-2", items)
            return first, second + other, before, await redis.xlen(keys.STREAM)
        finally:
            await redis.aclose()

    first, again, before, after = asyncio.run(twice())
    assert first == [None, None, None]
    assert again == [None, None, None, "demo-channel", "demo-channel", "demo-channel"]
    assert after - before == 1
    drain()


def test_concurrent_uploads_of_one_key_from_two_channels_accept_exactly_one(settings: Settings, drain: Any) -> None:
    ((key, packed),) = packed_invoices(settings, 1)

    async def race() -> list[list[str | None]]:
        redis = open_redis(settings)
        try:
            claimer = Claimer(redis)
            calls = [
                claimer.claim_and_enqueue(f"demo-channel{'-2' if i % 2 else ''}", 1, f"race-{i}", [(key, packed)])
                for i in range(40)
            ]
            return list(await asyncio.gather(*calls))
        finally:
            await redis.aclose()

    answers = [a[0] for a in asyncio.run(race())]
    assert answers.count(None) == 1
    drain()
