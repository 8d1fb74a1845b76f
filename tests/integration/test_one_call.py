"""An upload's limits, caps and claim in one script call (gateway/together.py) answer as the separate calls do:
the same decisions and reservations for the same sequence of requests, on a single Redis; and the claim is made,
once, exactly when every invoice of the request got through the limits and the caps."""

from __future__ import annotations

import random
from typing import Any

import msgspec
import pytest

from core import campaign as campaigns
from core import keys
from core.contract import Queued
from core.settings import Settings
from dedup.claim import Claimer
from gateway import enqueue
from gateway.parse import as_invoice
from gateway.together import Together
from gateway.validate import check
from loadtest import sample
from ratelimit.caps import Caps
from ratelimit.limits import Decision, Nonce, RateLimiter
from tests.integration.test_claim import with_stores

NOW_MS = 1_780_000_000_000
# Requests of one person known by ID number, as (which of two users, invoices): the campaign below allows 4
# invoices a minute per user and 4 a day per person, in one intake shard. The third request is cut by the limits
# (one invoice through, then capped by nothing), the fourth refused by them whole, the fifth (another user, the
# same person) capped.
SHAPE = [(0, 1), (0, 2), (0, 3), (0, 1), (1, 1)]


def campaign(settings: Settings, compact_from: str = "202701") -> campaigns.Campaign:
    base = campaigns.load(settings.campaign_file)
    limits = msgspec.structs.replace(base.limits, user_invoices_per_minute=4)
    caps = msgspec.structs.replace(
        base.caps, person_daily=4, person_monthly=100, seller_person_monthly=100, compact_from=compact_from
    )
    dedup = msgspec.structs.replace(base.dedup, shards=1)
    return msgspec.structs.replace(base, limits=limits, caps=caps, dedup=dedup)


def requests(camp: campaigns.Campaign, channel: str, seed: int) -> list[list[Queued]]:
    rng = random.Random(seed)
    id_number = sample.id_number(rng)
    users = [
        {"id": f"u{rng.randrange(10**9)}", "device_id": f"d{rng.randrange(10**9)}", "id_number": id_number}
        for _ in range(2)
    ]
    out = []
    for who, n in SHAPE:
        batch = [check(as_invoice(sample.invoice(rng, user=users[who])), camp, channel, "k", NOW_MS) for _ in range(n)]
        assert all(isinstance(q, Queued) for q in batch)
        out.append(batch)
    return out  # type: ignore[return-value]


def shape(decision: Decision | None, reserved: list[str]) -> tuple[Any, ...]:
    """What the two ways must agree on: the verdicts and the reservations (not the ms, which move with the clock)."""
    assert decision is not None
    return decision.replayed, decision.channel_wait_ms > 0, [w > 0 for w in decision.invoice_waits_ms], reserved


@pytest.mark.parametrize("compact_from", ["202701", "202601"])  # May 2026's cap hashes in either form
def test_one_call_answers_as_the_separate_calls_do(settings: Settings, compact_from: str) -> None:
    camp = campaign(settings, compact_from)
    run_id = random.randrange(10**9)

    async def run(redis: Any, pool: Any) -> tuple[list[Any], list[Any], list[Any], int]:
        limiter, caps = RateLimiter(redis, camp.limits), Caps(redis, camp)
        together, claimer = Together(redis, limiter, caps), Claimer(redis, pool, camp.dedup.shards)
        one, two, claimed = [], [], []
        for i, batch in enumerate(requests(camp, "demo-channel", run_id * 10 + 1)):
            request_id = f"one-{run_id}-{i}"
            items = enqueue.claim_items(list(enumerate(batch)))
            claim = claimer.first_call("demo-channel", NOW_MS, request_id, items, b"")
            assert claim is not None  # one shard
            answer = await together.decide(
                "demo-channel", len(batch), batch, Nonce(keys.nonce("demo-channel", request_id), b"t", 60), 1.0, claim
            )
            assert answer is not None
            one.append(shape(answer.decision, answer.reserved))
            claimed.append((claim is not None, answer.claimed))
        for i, batch in enumerate(requests(camp, "demo-channel-2", run_id * 10 + 2)):
            nonce = Nonce(keys.nonce("demo-channel-2", f"two-{run_id}-{i}"), b"t", 60)
            decision = await limiter.decide("demo-channel-2", len(batch), batch, nonce)
            through = [q for q, w in zip(batch, decision.invoice_waits_ms, strict=True) if w == 0]
            two.append(shape(decision, await caps.reserve(through) if through else []))
        # A replayed nonce is refused whole: nothing is reserved or claimed.
        batch = requests(camp, "demo-channel", run_id * 10 + 3)[0]
        again = Nonce(keys.nonce("demo-channel", f"one-{run_id}-0"), b"other", 60)
        items = enqueue.claim_items(list(enumerate(batch)))
        replayed = await together.decide(
            "demo-channel", len(batch), batch, again, 1.0, claimer.first_call("demo-channel", NOW_MS, "r", items, b"")
        )
        assert (
            replayed is not None and replayed.decision.replayed and replayed.reserved == [] and replayed.claimed is None
        )
        ours = 0
        for shard in range(camp.dedup.shards):
            for _, fields in await redis.xrange(keys.stream(shard), "-", "+"):
                ours += fields[b"~request"].decode().startswith(f"one-{run_id}-")
        await together.aclose()
        return one, two, claimed, ours

    one, two, claimed, entries = with_stores(settings, run)
    assert one == two
    # The sequence meets both limits: rate-limited invoices and a capped one.
    assert any(any(s[2]) for s in one)
    assert any("person_daily_cap" in s[3] for s in one)
    # Claimed in the call exactly when a claim was asked and every invoice passed both: then each is new ("").
    for s, (asked, answers) in zip(one, claimed, strict=True):
        passed = not any(s[2]) and all(r in ("new", "held") for r in s[3])
        assert (answers is not None) == (asked and passed)
        assert answers is None or answers == [b""] * len(s[3])
    assert [a is not None for _, a in claimed] == [True, True, False, False, False]
    assert entries == sum(1 for _, a in claimed if a is not None)  # one stream entry per claiming call
