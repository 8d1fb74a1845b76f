"""Upload to feed on the real stack: per-invoice answers, statuses, the hash chain, exactly once."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import asyncpg
import msgspec
import pytest

from core import campaign as campaigns
from core import contract
from core.feed import GENESIS, batch_sha256
from core.settings import Settings
from gateway.parse import as_invoice
from gateway.validate import check
from loadtest import sample
from loadtest.client import SignedClient
from tests.topology import ON_BOTH
from workers.judge import Judgement
from workers.sink import Judged, prepare, write


def read_whole_feed(draw: SignedClient) -> list[dict[str, Any]]:
    batches: list[dict[str, Any]] = []
    while True:
        page = draw.feed(after=batches[-1]["seq"] if batches else 0, limit=100)
        assert page.status_code == 200
        got = page.json()["batches"]
        if not got:
            return batches
        batches.extend(got)


def recompute_chain(batches: list[dict[str, Any]]) -> None:
    prev = GENESIS
    for expected_seq, batch in enumerate(batches, start=1):
        assert batch["seq"] == expected_seq
        assert batch["prev_sha256"] == prev
        assert batch["count"] == len(batch["entries"])
        texts = [json.dumps(e, sort_keys=True, separators=(",", ":"), ensure_ascii=False) for e in batch["entries"]]
        assert batch_sha256(prev, texts) == batch["sha256"]
        prev = batch["sha256"]


@ON_BOTH
def test_mixed_upload_is_answered_per_invoice_and_valid_ones_reach_the_feed(
    channel: SignedClient, draw: SignedClient, drain: Any
) -> None:
    rng = random.Random()
    valid = [sample.invoice(rng), sample.legacy_invoice(rng), sample.invoice(rng, category="零售")]
    broken = sample.broken_invoices(rng)
    resp = channel.upload(valid + [inv for _, inv in broken])
    assert resp.status_code == 202
    results = resp.json()["results"]
    assert [r["index"] for r in results] == list(range(len(valid) + len(broken)))
    assert [r["status"] for r in results[:3]] == ["accepted"] * 3
    assert [r["reason"] for r in results[3:]] == [reason for reason, _ in broken]
    assert all(r["receipt"] for r in results[:3])

    drain()
    batches = read_whole_feed(draw)
    recompute_chain(batches)
    fed = {e["key"]: e for b in batches for e in b["entries"]}
    for r, inv in zip(results[:3], valid, strict=True):
        entry = fed[r["key"]]
        assert entry["kind"] == "add" and entry["channel"] == "demo-channel"
        assert entry["amount_fen"] == round(float(inv["amount"]) * 100)
        assert len(entry["person"]) == 64 and "张三" not in json.dumps(entry, ensure_ascii=False)
        status = channel.status(r["key"]).json()
        assert status["status"] == "eligible" and status["batch_seq"] >= 1
        assert [h["status"] for h in status["history"]] == ["accepted", "verified", "eligible"]


def test_sandbox_endings_get_final_statuses_and_stay_out_of_the_feed(
    channel: SignedClient, draw: SignedClient, drain: Any
) -> None:
    rng = random.Random()
    expected = {
        "999": ("ineligible", "not_found_at_tax_authority"),
        "998": ("ineligible", "amount_mismatch"),
        "997": ("reversed", "reversed_at_verification"),
        "995": ("ineligible", "verification_failed"),
    }
    late = channel.upload([sample.invoice(rng, ending="996")]).json()["results"][0]["key"]
    resp = channel.upload([sample.invoice(rng, ending=e) for e in expected])
    keys = [r["key"] for r in resp.json()["results"]]
    drain()
    for key, (status, reason) in zip(keys, expected.values(), strict=True):
        got = channel.status(key).json()
        assert (got["status"], got["reason"]) == (status, reason)
        assert got["history"][-1] == {"status": status, "at": got["history"][-1]["at"], "reason": reason}
    fed = {e["key"] for b in read_whole_feed(draw) for e in b["entries"]}
    assert not fed & set(keys)
    # 996: not found twice (a new invoice reaches the tax system late), found at the second re-check.
    assert late in fed
    assert channel.status(late).json()["status"] == "eligible"


def test_upload_from_second_channel_is_a_duplicate_and_fed_once(
    channel: SignedClient, channel2: SignedClient, draw: SignedClient, drain: Any
) -> None:
    inv = sample.invoice(random.Random())
    first = channel.upload([inv]).json()["results"][0]
    second = channel2.upload([inv]).json()["results"][0]
    again = channel.upload([inv]).json()["results"][0]
    assert (first["status"], second["status"], again["status"]) == ("accepted", "duplicate", "duplicate")
    assert "receipt" not in second
    assert again["receipt"] == first["receipt"]  # the channel's own earlier upload: its receipt again
    drain()
    keys = [e["key"] for b in read_whole_feed(draw) for e in b["entries"]]
    assert keys.count(first["key"]) == 1
    assert channel2.status(first["key"]).json()["status"] == "duplicate"
    assert channel.status(first["key"]).json()["status"] == "eligible"


def test_same_key_twice_in_one_request_is_accepted_once(channel: SignedClient) -> None:
    inv = sample.invoice(random.Random())
    statuses = [r["status"] for r in channel.upload([inv, inv]).json()["results"]]
    assert statuses == ["accepted", "duplicate"]


def test_queued_invoice_shows_accepted_before_the_workers_run(channel: SignedClient, drain: Any) -> None:
    key = channel.upload([sample.invoice(random.Random())]).json()["results"][0]["key"]
    got = channel.status(key).json()
    assert got["status"] == "accepted" and [h["status"] for h in got["history"]] == ["accepted"]
    drain()


def test_a_batch_written_twice_is_counted_once(settings: Settings, sql: Any) -> None:
    """A worker that dies after COPY but before XACK redelivers its batch: nothing may double."""
    rng = random.Random()
    channel_queued = []
    camp = campaigns.load(settings.campaign_file)
    for _ in range(5):
        q = check(as_invoice(sample.invoice(rng)), camp, "demo-channel", "k", 1)
        channel_queued.append(contract.unpack(msgspec.msgpack.encode(q)))
    judged = [Judged(q, Judgement("verified"), None) for q in channel_queued]

    async def twice() -> list[int]:
        pool = await asyncpg.create_pool(settings.stores.database_url, min_size=1, max_size=2, init=prepare)
        try:
            return [await write(pool, judged, []), await write(pool, judged, [])]
        finally:
            await pool.close()

    assert asyncio.run(twice()) == [5, 0]

    async def doubled() -> int:
        pool = await asyncpg.create_pool(settings.stores.database_url, min_size=1, max_size=2, init=prepare)
        try:
            return await write(pool, [*extra, *extra], [])  # the same key twice in one batch
        finally:
            await pool.close()

    extra = [
        Judged(
            contract.unpack(
                msgspec.msgpack.encode(check(as_invoice(sample.invoice(rng)), camp, "demo-channel", "k", 1))
            ),
            Judgement("verified"),
            None,
        )
    ]
    assert asyncio.run(doubled()) == 1
    keys = [q.key for q in channel_queued]
    assert sql("SELECT count(*) FROM feed_entries WHERE key = ANY($1)", keys)[0][0] == 5
    assert sql("SELECT count(*) FROM invoice_events WHERE key = ANY($1)", keys)[0][0] == 5


def test_sealed_batches_cannot_be_changed(sql: Any, channel: SignedClient, drain: Any) -> None:
    channel.upload([sample.invoice(random.Random())])
    drain()
    with pytest.raises(asyncpg.RaiseError, match="sealed"):
        sql("UPDATE feed_batches SET count = count + 1 WHERE seq = 1")
    with pytest.raises(asyncpg.RaiseError, match="sealed"):
        sql("DELETE FROM feed_entries WHERE batch_seq = 1")
