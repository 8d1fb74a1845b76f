"""An upload's rate limits and caps in one script call (ratelimit/together.py) answer as the two calls in a row
do: the same decisions and reservations for the same sequence of requests, on a single Redis."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import msgspec

from core import campaign as campaigns
from core import keys
from core.contract import Queued
from core.settings import Settings
from core.stores import open_redis
from gateway.parse import as_invoice
from gateway.validate import check
from loadtest import sample
from ratelimit.caps import Caps
from ratelimit.limits import Decision, Nonce, RateLimiter
from ratelimit.together import LimitsAndCaps

NOW_MS = 1_780_000_000_000
# Requests of one consumer (one user, one device, one person), each a count of fresh invoices; the campaign
# below allows 5 invoices a minute per user and 3 a day per person: some are capped, then some rate limited.
SHAPE = [1, 2, 3, 1, 2]


def campaign(settings: Settings) -> campaigns.Campaign:
    base = campaigns.load(settings.campaign_file)
    limits = msgspec.structs.replace(base.limits, user_invoices_per_minute=5)
    caps = msgspec.structs.replace(base.caps, person_daily=3, person_monthly=100, seller_person_monthly=100)
    return msgspec.structs.replace(base, limits=limits, caps=caps)


def requests(camp: campaigns.Campaign, channel: str, seed: int) -> list[list[Queued]]:
    rng = random.Random(seed)
    user = {
        "id": f"u{rng.randrange(10**9)}",
        "device_id": f"d{rng.randrange(10**9)}",
        "id_number": sample.id_number(rng),
    }
    out = []
    for n in SHAPE:
        batch = [check(as_invoice(sample.invoice(rng, user=user)), camp, channel, "k", NOW_MS) for _ in range(n)]
        assert all(isinstance(q, Queued) for q in batch)
        out.append(batch)
    return out  # type: ignore[return-value]


def shape(decision: Decision | None, reserved: list[str]) -> tuple[Any, ...]:
    """What the two ways must agree on: the verdicts and the reservations (not the ms, which move with the clock)."""
    assert decision is not None
    return decision.replayed, decision.channel_wait_ms > 0, [w > 0 for w in decision.invoice_waits_ms], reserved


def test_one_call_answers_as_the_two_calls_do(settings: Settings) -> None:
    camp = campaign(settings)
    run_id = random.randrange(10**9)

    async def run() -> tuple[list[Any], list[Any]]:
        redis = open_redis(settings.stores)
        try:
            limiter, caps = RateLimiter(redis, camp.limits), Caps(redis, camp)
            together = LimitsAndCaps(redis, limiter, caps)
            one, two = [], []
            for i, batch in enumerate(requests(camp, "demo-channel", 1)):
                nonce = Nonce(keys.nonce("demo-channel", f"one-{run_id}-{i}"), b"t", 60)
                both = await together.decide("demo-channel", len(batch), batch, nonce)
                assert both is not None
                one.append(shape(*both))
            for i, batch in enumerate(requests(camp, "demo-channel-2", 2)):
                nonce = Nonce(keys.nonce("demo-channel-2", f"two-{run_id}-{i}"), b"t", 60)
                decision = await limiter.decide("demo-channel-2", len(batch), batch, nonce)
                through = [q for q, w in zip(batch, decision.invoice_waits_ms, strict=True) if w == 0]
                two.append(shape(decision, await caps.reserve(through) if through else []))
            # A replayed nonce is refused whole, and nothing is reserved.
            batch = requests(camp, "demo-channel", 3)[0]
            again = Nonce(keys.nonce("demo-channel", f"one-{run_id}-0"), b"other", 60)
            replayed = await together.decide("demo-channel", len(batch), batch, again)
            assert replayed is not None and replayed[0].replayed and replayed[1] == []
            return one, two
        finally:
            await redis.aclose()

    one, two = asyncio.run(run())
    assert one == two
    # The sequence meets both limits: a capped invoice (3 a day) and a rate-limited one (5 a minute).
    assert any(any(s[2]) for s in one)
    assert any("person_daily_cap" in s[3] for s in one)
