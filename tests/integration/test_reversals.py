"""Red-letter reversals: before or after the invoice, before or after feeding; the feed stays a valid chain."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import asyncpg
import httpx
import msgspec
import orjson

from core import campaign as campaigns
from core import contract
from core.settings import Settings
from gateway.parse import as_invoice
from gateway.validate import check
from loadtest import sample
from loadtest.client import SignedClient
from tests.integration.test_pipeline import read_whole_feed, recompute_chain
from workers.judge import Judgement
from workers.seal import seal_all
from workers.sink import Judged, prepare, write


def reverse(channel: SignedClient, *reversals: dict[str, Any]) -> Any:
    body = orjson.dumps({"reversals": list(reversals)})
    return channel.request("POST", "/v1/reversals", body, {"Content-Type": "application/json"})


def red(number: str) -> dict[str, str]:
    return {"number": number, "red_number": "2634" + "9" * 16, "reason": "refund"}


def entries_for(draw: SignedClient, key: str) -> list[str]:
    batches = read_whole_feed(draw)
    recompute_chain(batches)
    return [e["kind"] for b in batches for e in b["entries"] if e["key"] == key]


def test_a_fed_invoice_reversed_gets_a_void_entry(channel: SignedClient, draw: SignedClient, drain: Any) -> None:
    inv = sample.invoice(random.Random())
    key = channel.upload([inv]).json()["results"][0]["key"]
    drain()
    assert channel.status(key).json()["status"] == "eligible"
    resp = reverse(channel, red(inv["number"]))
    assert resp.status_code == 202 and resp.json()["results"] == [{"index": 0, "key": key, "status": "reversed"}]
    drain()  # seals the void entry
    assert entries_for(draw, key) == ["add", "void"]
    status = channel.status(key).json()
    assert status["status"] == "reversed" and status["reason"] == "reversed_by_red_invoice"
    assert [h["status"] for h in status["history"]][-2:] == ["eligible", "reversed"]
    assert reverse(channel, red(inv["number"])).json()["results"][0]["status"] == "already_reversed"


def test_a_reversal_before_the_commit_or_even_the_upload_is_applied_when_the_invoice_arrives(
    channel: SignedClient, draw: SignedClient, drain: Any
) -> None:
    rng = random.Random()
    queued, later = sample.invoice(rng), sample.invoice(rng)
    queued_key = channel.upload([queued]).json()["results"][0]["key"]
    answers = reverse(channel, red(queued["number"]), red(later["number"])).json()["results"]
    assert [a["status"] for a in answers] == ["recorded", "recorded"]
    later_key = channel.upload([later]).json()["results"][0]["key"]
    drain()
    for key in (queued_key, later_key):
        assert channel.status(key).json()["status"] == "reversed"
        assert entries_for(draw, key) == []


def test_a_judged_invoice_reversed_before_its_seal_never_enters_the_feed(
    settings: Settings, channel: SignedClient, draw: SignedClient
) -> None:
    camp = campaigns.load(settings.campaign_file)
    inv = sample.invoice(random.Random())
    q = check(as_invoice(inv), camp, "demo-channel", "k", 1_780_000_000_000)

    async def judged_unsealed() -> None:
        pool = await asyncpg.create_pool(settings.stores.database_url, min_size=1, max_size=2, init=prepare)
        try:
            await write(pool, [Judged(contract.unpack(msgspec.msgpack.encode(q)), Judgement("verified"), None)], [])
        finally:
            await pool.close()

    asyncio.run(judged_unsealed())
    assert reverse(channel, red(inv["number"])).json()["results"][0]["status"] == "reversed"

    async def seal() -> None:
        pool = await asyncpg.create_pool(settings.stores.database_url, min_size=1, max_size=2)
        try:
            await seal_all(pool, 1000)
        finally:
            await pool.close()

    asyncio.run(seal())
    assert entries_for(draw, inv["number"]) == []


def test_bad_reversals_are_refused_one_by_one(channel: SignedClient, draw: SignedClient) -> None:
    answers = reverse(channel, {"number": "123", "red_number": "2634" + "9" * 16}, {"oops": 1}).json()["results"]
    assert [a["reason"] for a in answers] == ["invalid_reversal", "invalid_reversal"]
    malformed = channel.request("POST", "/v1/reversals", b"[]", {"Content-Type": "application/json"})
    assert malformed.status_code == 400 and malformed.json()["code"] == "malformed_body"
    assert reverse(draw, red("2634" + "1" * 16)).status_code == 403


def test_payout_hold_keeps_eligible_invoices_out_of_the_feed_until_it_passes(
    settings: Settings, channel: SignedClient, draw: SignedClient, wait_for: Any
) -> None:
    camp = campaigns.load(settings.campaign_file)
    rng = random.Random()
    kept, reversed_ = sample.invoice(rng), sample.invoice(rng)
    queued = [
        contract.unpack(msgspec.msgpack.encode(check(as_invoice(i), camp, "demo-channel", "k", 1_780_000_000_000)))
        for i in (kept, reversed_)
    ]

    async def with_pool(body: Any) -> Any:
        pool = await asyncpg.create_pool(settings.stores.database_url, min_size=1, max_size=2, init=prepare)
        try:
            return await body(pool)
        finally:
            await pool.close()

    asyncio.run(with_pool(lambda pool: write(pool, [Judged(q, Judgement("verified"), None) for q in queued], [], 1.5)))
    asyncio.run(with_pool(lambda pool: seal_all(pool, 1000)))
    assert entries_for(draw, kept["number"]) == []  # held
    assert reverse(channel, red(reversed_["number"])).json()["results"][0]["status"] == "reversed"

    def sealed() -> bool:
        asyncio.run(with_pool(lambda pool: seal_all(pool, 1000)))
        return entries_for(draw, kept["number"]) == ["add"]

    wait_for(sealed, 10)
    assert entries_for(draw, reversed_["number"]) == []  # reversed during the hold: never fed


def register_red(settings: Settings, inv: dict[str, Any], red_number: str) -> None:
    """The tax system (the simulator) now holds a red-letter invoice cancelling ``inv``."""
    reds = [{"red_number": red_number, "number": inv["number"], "code": inv.get("code", "")}]
    assert httpx.post(f"{settings.verify.url}/sandbox/red-invoices", json=reds).status_code == 200


def test_another_channels_reversal_waits_for_the_tax_service_and_takes_effect_once_it_confirms(
    settings: Settings, channel: SignedClient, channel2: SignedClient, draw: SignedClient, drain: Any
) -> None:
    inv = sample.invoice(random.Random())
    key = channel.upload([inv]).json()["results"][0]["key"]
    drain()
    assert channel.status(key).json()["status"] == "eligible"
    claim = {**red(inv["number"]), "red_number": "2634" + "7" * 16}
    assert reverse(channel2, claim).json()["results"][0]["status"] == "pending_confirmation"
    assert channel.status(key).json()["status"] == "eligible"  # nothing happened yet
    register_red(settings, inv, claim["red_number"])
    drain()  # a worker asks the tax service, which holds that red invoice
    assert channel.status(key).json()["status"] == "reversed"
    assert entries_for(draw, key) == ["add", "void"]
    assert reverse(channel2, claim).json()["results"][0]["status"] == "already_reversed"


def test_another_channels_reversal_the_tax_service_knows_nothing_of_is_refused_and_changes_nothing(
    channel: SignedClient, channel2: SignedClient, draw: SignedClient, drain: Any, wait_for: Any
) -> None:
    inv = sample.invoice(random.Random())
    key = channel.upload([inv]).json()["results"][0]["key"]
    drain()
    assert reverse(channel2, red(inv["number"])).json()["results"][0]["status"] == "pending_confirmation"

    def refused() -> bool:
        drain()  # each pass asks again once the re-check is due (the tests' re-checks: 0.2 s, 0.4 s)
        return bool(reverse(channel2, red(inv["number"])).json()["results"][0]["status"] == "refused")

    wait_for(refused, 20)
    assert channel.status(key).json()["status"] == "eligible"
    assert entries_for(draw, key) == ["add"]
    # The channel that submitted it reverses it at once, whatever the other's stands at.
    assert reverse(channel, red(inv["number"])).json()["results"][0]["status"] == "reversed"


def test_a_reversal_sent_before_the_upload_by_another_channel_does_not_take_effect_at_commit(
    settings: Settings, channel: SignedClient, channel2: SignedClient, drain: Any, wait_for: Any
) -> None:
    inv = sample.invoice(random.Random())
    claim = {**red(inv["number"]), "red_number": "2634" + "6" * 16}
    assert reverse(channel2, claim).json()["results"][0]["status"] == "recorded"
    key = channel.upload([inv]).json()["results"][0]["key"]
    drain()
    assert channel.status(key).json()["status"] == "eligible"
    register_red(settings, inv, claim["red_number"])

    def reversed_() -> bool:
        drain()  # asked again once its re-check is due
        return bool(channel.status(key).json()["status"] == "reversed")

    wait_for(reversed_, 20)


def test_a_reversal_named_twice_is_answered_at_both_indexes_and_a_nul_reason_is_refused(channel: SignedClient) -> None:
    # Found by tests/e2e/test_fuzz.py: the second of two reversals of one key was answered `{}`; a NUL reached
    # PostgreSQL (503).
    twice = red("2634" + "5" * 16)
    answers = reverse(channel, twice, twice, {**twice, "reason": "a\x00b"}).json()["results"]
    assert [(a["index"], a.get("key")) for a in answers[:2]] == [(0, twice["number"]), (1, twice["number"])]
    assert answers[0]["status"] == answers[1]["status"]
    assert answers[2]["status"] == "rejected" and answers[2]["reason"] == "invalid_reversal"


def test_a_nul_in_the_held_listings_cursor_or_a_decisions_note_is_400(base_url: str) -> None:
    # Found by tests/e2e/test_fuzz.py: both were 503 (PostgreSQL's text holds no NUL).
    decision = orjson.dumps({"decision": "reject", "note": "a\x00b"})
    with SignedClient(base_url, "demo-admin", "demo-admin-secret") as admin:
        listing = admin.request("GET", "/v1/admin/held?after=a%00b")
        decided = admin.request("POST", "/v1/admin/held/720", decision, {"Content-Type": "application/json"})
    assert listing.status_code == 400 and listing.json()["code"] == "bad_parameter"
    assert decided.status_code == 400 and decided.json()["code"] == "malformed_body"
