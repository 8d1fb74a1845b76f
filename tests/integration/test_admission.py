"""Admission on the real stack: rate limits per channel, user and device; campaign caps across channels."""

from __future__ import annotations

import asyncio
import random
import threading
from typing import Any

import msgspec
import pytest

from core import campaign as campaigns
from core import keys
from core.contract import Queued
from core.settings import Settings
from core.stores import open_redis
from gateway.parse import as_invoice
from gateway.validate import check
from loadtest import sample
from loadtest.client import SignedClient
from ratelimit.caps import Caps
from ratelimit.limits import Nonce, RateLimiter
from tests.topology import ON_BOTH


def statuses(resp: Any) -> list[str]:
    assert resp.status_code == 202, resp.text
    return [r.get("reason") or r["status"] for r in resp.json()["results"]]


def person(rng: random.Random) -> dict[str, str]:
    """A consumer known by ID number: the same person on every channel."""
    return {
        "id": f"u{rng.randrange(10**9)}",
        "device_id": f"d{rng.randrange(10**9)}",
        "id_number": sample.id_number(rng),
    }


def test_third_invoice_of_the_day_is_refused_whichever_channel_sends_it(
    channel: SignedClient, channel2: SignedClient
) -> None:
    rng = random.Random()
    who = person(rng)
    assert statuses(channel.upload([sample.invoice(rng, user=who)])) == ["accepted"]
    assert statuses(channel2.upload([sample.invoice(rng, user={**who, "id": "other-app-id"})])) == ["accepted"]
    assert statuses(channel.upload([sample.invoice(rng, user=who)])) == ["person_daily_cap"]
    assert statuses(channel2.upload([sample.invoice(rng, user=who)])) == ["person_daily_cap"]


@ON_BOTH
def test_fifty_concurrent_uploads_for_one_person_on_both_channels_yield_exactly_the_cap(base_url: str) -> None:
    rng = random.Random()
    id_number = sample.id_number(rng)
    invoices = [
        sample.invoice(rng, user={"id": f"c{i}", "device_id": f"c{i}", "id_number": id_number}) for i in range(50)
    ]
    answers: list[str] = []
    lock = threading.Lock()

    def send(i: int) -> None:
        client_id = ("demo-channel", "demo-channel-2")[i % 2]
        with SignedClient(base_url, client_id, f"{client_id}-secret") as client:
            got = statuses(client.upload([invoices[i]]))
        with lock:
            answers.extend(got)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert answers.count("accepted") == 2
    assert answers.count("person_daily_cap") == 48


def test_a_duplicate_takes_no_slot(channel: SignedClient, channel2: SignedClient) -> None:
    rng = random.Random()
    p, q = person(rng), person(rng)
    first = sample.invoice(rng, user=p)
    assert statuses(channel.upload([first])) == ["accepted"]
    assert statuses(channel.upload([first])) == ["duplicate"]  # p again: the same slot, no second one
    assert statuses(channel2.upload([{**first, "user": q}])) == ["duplicate"]  # q's slot is given back
    assert statuses(channel.upload([sample.invoice(rng, user=p)])) == ["accepted"]
    assert statuses(channel.upload([sample.invoice(rng, user=p)])) == ["person_daily_cap"]
    assert statuses(channel2.upload([sample.invoice(rng, user=q), sample.invoice(rng, user=q)])) == ["accepted"] * 2


def test_an_ineligible_invoice_gives_its_slot_back(channel: SignedClient, drain: Any) -> None:
    rng = random.Random()
    p = person(rng)
    assert statuses(channel.upload([sample.invoice(rng, user=p, ending="999") for _ in range(2)])) == ["accepted"] * 2
    assert statuses(channel.upload([sample.invoice(rng, user=p)])) == ["person_daily_cap"]
    drain()  # both are not found at the tax authority: ineligible
    assert statuses(channel.upload([sample.invoice(rng, user=p) for _ in range(3)])) == [
        "accepted",
        "accepted",
        "person_daily_cap",
    ]
    drain()


# Upload times: May 2026, whose cap hashes may still bear their long names (core/keys.py CAP_LONG_UNTIL), and
# January 2027, whose cannot, and which the sandbox campaign counts in the compact form (caps.compact_from).
MAY_2026_MS, JAN_2027_MS = 1_780_000_000_000, 1_800_000_000_000


@pytest.mark.parametrize("now_ms", [MAY_2026_MS, JAN_2027_MS])
def test_monthly_and_seller_caps(settings: Settings, now_ms: int) -> None:
    """The monthly and per-seller caps, with the daily cap lifted (uploads here all fall on one day)."""
    base = campaigns.load(settings.campaign_file)
    camp = msgspec.structs.replace(
        base, caps=msgspec.structs.replace(base.caps, person_daily=100, person_monthly=5, seller_person_monthly=3)
    )
    rng = random.Random()
    p = person(rng)
    seller = sample.seller_tax_id(rng)
    same_seller = [sample.invoice(rng, user=p, seller_tax_id=seller) for _ in range(4)]
    others = [sample.invoice(rng, user=p) for _ in range(3)]
    queued = [check(as_invoice(i), camp, "demo-channel", "k", now_ms) for i in same_seller + others]
    assert all(isinstance(q, Queued) for q in queued)

    async def run() -> tuple[list[str], list[str], int, list[str]]:
        redis = open_redis(settings.stores)
        try:
            caps = Caps(redis, camp)
            assert caps.place(queued[0]).compact == (now_ms == JAN_2027_MS)  # type: ignore[arg-type]
            first = await caps.reserve(queued)  # type: ignore[arg-type]
            again = await caps.reserve(queued[:3])  # type: ignore[arg-type]
            released = await caps.release(queued[:1]) + await caps.release(queued[:1])  # type: ignore[arg-type]
            # The slot given back was the seller's too: the fourth invoice from that seller now gets one.
            after = await caps.reserve(queued[3:4])  # type: ignore[arg-type]
            return first, again, released, after
        finally:
            await redis.aclose()

    first, again, released, after = asyncio.run(run())
    assert first == ["new", "new", "new", "seller_person_monthly_cap", "new", "new", "person_monthly_cap"]
    assert again == ["held", "held", "held"]
    assert released == 1
    assert after == ["new"]


def test_a_person_month_hash_of_the_compact_form_takes_at_most_150_bytes_for_one_invoice(settings: Settings) -> None:
    """Issue 19's figure: what a person with one invoice leaves in Redis for the month, in both forms."""
    camp = campaigns.load(settings.campaign_file)
    rng = random.Random()
    p = person(rng)
    queued = [
        check(as_invoice(sample.invoice(rng, user=p)), camp, "demo-channel", "k", ms)
        for ms in (MAY_2026_MS, JAN_2027_MS)
    ]

    async def run() -> dict[bool, tuple[int, int]]:
        redis = open_redis(settings.stores)
        try:
            caps = Caps(redis, camp)
            sizes = {}
            for q in queued:
                assert await caps.reserve([q]) == ["new"]  # type: ignore[list-item]
                place = caps.place(q)  # type: ignore[arg-type]
                sizes[place.compact] = (await redis.memory_usage(place.key, samples=0), await redis.hlen(place.key))
            return sizes
        finally:
            await redis.aclose()

    sizes = asyncio.run(run())
    assert sizes[True][1] == sizes[False][1] == 4  # the month's, the day's and the seller's counts, the reservation
    assert sizes[True][0] <= 150 < sizes[False][0], sizes


@pytest.mark.parametrize("release_first", [False, True])
def test_a_cap_hash_of_the_long_name_is_moved_and_keeps_counting(settings: Settings, release_first: bool) -> None:
    """A person-month hash written before issue 19, under the whole person's reference: the first reservation
    (or release) of the month moves it to its short name, and its counts and slots go on."""
    base = campaigns.load(settings.campaign_file)
    camp = msgspec.structs.replace(
        base, caps=msgspec.structs.replace(base.caps, person_daily=100, person_monthly=3, seller_person_monthly=3)
    )
    rng = random.Random()
    p = person(rng)
    queued = [check(as_invoice(sample.invoice(rng, user=p)), camp, "demo-channel", "k", MAY_2026_MS) for _ in range(3)]
    assert all(isinstance(q, Queued) for q in queued)

    async def run() -> tuple[list[Any], list[str], int, int]:
        redis = open_redis(settings.stores)
        try:
            caps = Caps(redis, camp)
            place = caps.place(queued[0])  # type: ignore[arg-type]
            assert place.moving and place.long != place.key and place.long.endswith(":202605")
            # The first two invoices' slots, as the scripts before issue 19 wrote them.
            first, second = queued[0], queued[1]
            day, month = f"d{place.day}", 2
            await redis.hset(
                place.long,
                mapping={
                    "m": month,
                    day: 2,
                    f"s{first.seller_tax_id}": 1,  # type: ignore[union-attr]
                    f"s{second.seller_tax_id}": 1,  # type: ignore[union-attr]
                    f"i{first.key}": f"{place.day}|{first.seller_tax_id}",  # type: ignore[union-attr]
                    f"i{second.key}": f"{place.day}|{second.seller_tax_id}",  # type: ignore[union-attr]
                },
            )
            await redis.expire(place.long, 3600)
            released = await caps.release([first]) if release_first else 0  # type: ignore[list-item]
            answers = await caps.reserve(queued)  # type: ignore[arg-type]
            names = [await redis.exists(place.long), await redis.exists(place.key)]
            return names, answers, released, int(await redis.hget(place.key, "m"))
        finally:
            await redis.aclose()

    names, answers, released, month_count = asyncio.run(run())
    assert names == [0, 1]  # moved to its short name
    if release_first:
        assert released == 1
        assert answers == ["new", "held", "new"] and month_count == 3
    else:
        assert answers == ["held", "held", "new"] and month_count == 3


def one_queued(settings: Settings) -> tuple[campaigns.Campaign, Queued]:
    camp = campaigns.load(settings.campaign_file)
    q = check(as_invoice(sample.invoice(random.Random())), camp, "demo-channel", "k", 1)
    assert isinstance(q, Queued)
    return camp, q


def test_an_accepted_invoice_writes_its_states_as_16_bytes(settings: Settings) -> None:
    camp, q = one_queued(settings)
    tag = keys.rate_limits("demo-channel")

    async def run() -> tuple[list[int], list[bytes]]:
        redis = open_redis(settings.stores)
        try:
            nonce = Nonce(keys.nonce("demo-channel", f"new-state-{random.randrange(10**9)}"), b"t", 60)
            decision = await RateLimiter(redis, camp.limits).decide("demo-channel", 1, [q], nonce)
            states = [await redis.get(f"{tag}:u2:{q.user_ref}"), await redis.get(f"{tag}:d2:{q.device_ref}")]
            return decision.invoice_waits_ms, states
        finally:
            await redis.aclose()

    waits, states = asyncio.run(run())
    assert waits == [0]
    assert [len(s) for s in states] == [16, 16]


def test_ticket_farm_device_is_throttled_and_an_honest_user_is_not(channel: SignedClient) -> None:
    rng = random.Random()
    farm = [sample.invoice(rng, user={"id": f"f{i}", "device_id": "farm-device"}) for i in range(25)]
    results = channel.upload(farm).json()["results"]
    assert [r["status"] for r in results] == ["accepted"] * 20 + ["rate_limited"] * 5
    assert all(r["retry_after"] >= 1 for r in results[20:])
    honest = sample.invoice(rng)
    assert statuses(channel.upload([honest])) == ["accepted"]


def test_channel_over_its_rate_gets_429_with_retry_after_and_ratelimit_headers(base_url: str) -> None:
    rng = random.Random()
    with SignedClient(base_url, "tiny-channel", "tiny-channel-secret") as tiny:
        answers = [tiny.upload([sample.invoice(rng)]) for _ in range(3)]
    assert [a.status_code for a in answers] == [202, 202, 429]
    assert answers[0].headers["ratelimit-policy"].startswith('"requests";q=2;w=1')
    assert answers[0].headers["ratelimit"].startswith('"requests";r=1;t=')
    refused = answers[2]
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["code"] == "channel_rate_limited"
    assert refused.json()["type"] == "urn:invoice-gateway:problem:rate-limited"
    assert 1 <= int(refused.headers["retry-after"]) <= 2
    assert refused.headers["ratelimit"].startswith('"requests";r=0;t=')
