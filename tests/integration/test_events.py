"""The change feed of a channel (GET /v1/events): every status change of its invoices after the 202, in order,
resumable, woken by the database, never skipping an event whose transaction commits late."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest

from core.settings import Settings
from gateway.events import READ, read
from loadtest import sample
from loadtest.client import SignedClient
from tests.conftest import signed
from tests.integration.helpers import index_parents, long_poll_during, plan_nodes, scratch_database
from tests.integration.test_judging import decide
from tests.integration.test_reversals import reverse


@pytest.fixture
def admin(base_url: str) -> Iterator[SignedClient]:
    yield from signed(base_url, "demo-admin")


def events(client: SignedClient, after: str, limit: int = 1000, wait: float | None = None) -> dict[str, Any]:
    query = f"after={after}&limit={limit}" + ("" if wait is None else f"&wait={wait:g}")
    resp = client.request("GET", f"/v1/events?{query}")
    assert resp.status_code == 200, resp.text
    page: dict[str, Any] = resp.json()
    return page


def the_end(client: SignedClient) -> str:
    """The cursor after every event so far."""
    after = ""
    while (page := events(client, after))["events"]:
        after = page["next"]
    return after


def read_all(client: SignedClient, after: str, limit: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    while (page := events(client, after, limit))["events"]:
        found += page["events"]
        after = page["next"]
    return found


def test_each_status_change_of_the_channels_invoices_comes_once_in_order_and_resumes(
    channel: SignedClient, channel2: SignedClient, admin: SignedClient, drain: Any
) -> None:
    rng = random.Random()
    start = the_end(channel)
    beijing = {"id": f"u{rng.randrange(10**9)}", "device_id": "d-trip", "location": {"lat": 39.9, "lon": 116.4}}
    invoices = {
        "fed then reversed": sample.invoice(rng),
        "not found": sample.invoice(rng, ending="999"),
        "amount differs": sample.invoice(rng, ending="998"),
        "reversed at verification": sample.invoice(rng, ending="997"),
        "held then released": sample.invoice(rng, user=beijing),
    }
    results = channel.upload(list(invoices.values())).json()["results"]
    key = {name: r["key"] for name, r in zip(invoices, results, strict=True)}
    other = channel2.upload([sample.invoice(rng)]).json()["results"][0]["key"]
    drain()
    assert decide(admin, key["held then released"], "release").status_code == 200
    drain()
    number = invoices["fed then reversed"]["number"]
    assert reverse(channel, {"number": number, "red_number": "2634" + "9" * 16}).status_code == 202

    paged = read_all(channel, start, 2)
    assert paged == read_all(channel, start, 1000)  # resuming from each page's next loses and repeats nothing
    assert other not in {e["key"] for e in paged}  # another channel's invoice
    by_key: dict[str, list[tuple[str, str | None]]] = {}
    for e in paged:
        by_key.setdefault(e["key"], []).append((e["status"], e.get("reason")))
    assert by_key[key["fed then reversed"]] == [
        ("verified", None),
        ("eligible", None),
        ("reversed", "reversed_by_red_invoice"),
    ]
    assert by_key[key["not found"]] == [("ineligible", "not_found_at_tax_authority")]
    assert by_key[key["amount differs"]] == [("verified", None), ("ineligible", "amount_mismatch")]
    assert by_key[key["reversed at verification"]] == [("verified", None), ("reversed", "reversed_at_verification")]
    assert by_key[key["held then released"]] == [
        ("verified", None),
        ("held", "upload_far_from_city"),
        ("verified", "released_in_review"),
        ("eligible", None),
    ]
    fed = [e for e in paged if e["status"] == "eligible"]
    assert all(isinstance(e["batch_seq"], int) for e in fed)
    for name, k in key.items():  # the same changes, in the same order, as the invoice's own history
        history = channel.status(k).json()["history"]
        assert [(h["status"], h.get("reason")) for h in history if h["status"] != "accepted"] == by_key[k], name


def test_a_long_poll_returns_as_soon_as_an_event_is_written(channel: SignedClient, drain: Any) -> None:
    start = the_end(channel)

    def upload_and_drain() -> str:
        key: str = channel.upload([sample.invoice(random.Random())]).json()["results"][0]["key"]
        drain()
        return key

    answer, key, took_s = long_poll_during(lambda: events(channel, start, wait=20), upload_and_drain)
    assert answer["events"] and answer["events"][0]["key"] == key
    assert took_s < 15  # woken by the commit, not by the end of its wait


def test_bad_cursors_and_waits_are_refused(channel: SignedClient) -> None:
    for query in ("after=12", "after=1-x", "wait=31", "limit=0", "limit=1001"):
        resp = channel.request("GET", f"/v1/events?{query}")
        assert resp.status_code == 400 and resp.json()["code"] == "bad_parameter", query


def test_an_event_whose_transaction_commits_later_is_not_skipped(settings: Settings) -> None:
    """Ids are given out at insert and transactions commit in another order: the feed must wait for the older
    transaction rather than pass its id."""

    async def run() -> tuple[list[str], list[str], list[str]]:
        dsn = settings.stores.database_url
        slow, quick = await asyncpg.connect(dsn), await asyncpg.connect(dsn)
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=1)
        insert = "INSERT INTO invoice_events (key, channel, status, at) VALUES ($1, 'order-test', 'verified', now())"
        try:
            slow_tx = slow.transaction()
            await slow_tx.start()
            await slow.execute(insert, "first")  # its id is the smaller one, its commit the later one
            await quick.execute(insert, "second")
            while_open = [e["key"] for e in await read(pool, "order-test", (0, 0), 10)]
            await slow_tx.commit()
            after_commit = [e["key"] for e in await read(pool, "order-test", (0, 0), 10)]
            first_cursor = (await read(pool, "order-test", (0, 0), 1))[0]["cursor"]
            tx, event_id = (int(part) for part in first_cursor.split("-"))
            resumed = [e["key"] for e in await read(pool, "order-test", (tx, event_id), 10)]
            return while_open, after_commit, resumed
        finally:
            await slow.close()
            await quick.close()
            await pool.close()

    while_open, after_commit, resumed = asyncio.run(run())
    assert while_open == []  # "second" committed, but an older transaction may still write behind it
    assert after_commit == ["first", "second"]
    assert resumed == ["second"]


def test_the_feed_reads_one_channels_index_range_however_large_the_table(settings: Settings) -> None:
    async def run() -> list[str]:
        async with scratch_database(settings, "events_scale") as conn:
            # 300,000 events of 30 channels, a third of them "accepted" (not in the feed), written by 30
            # transactions (as the sink writes them: the planner's estimate of the rows after a cursor needs more
            # than one transaction id; the table is partitioned by month, and one month holds them all).
            for part in range(30):
                await conn.execute(
                    "INSERT INTO invoice_events (key, channel, status, at)"
                    " SELECT 'k' || g, 'channel-' || (g % 30),"
                    " (ARRAY['accepted', 'verified', 'eligible'])[g % 3 + 1], now()"
                    " FROM generate_series($1::int * 10000 + 1, ($1::int + 1) * 10000) g",
                    part,
                )
            await conn.execute("ANALYZE invoice_events")
            tx = await conn.fetchval("SELECT min(tx)::text FROM invoice_events")
            plan = await conn.fetchval("EXPLAIN (FORMAT JSON) " + READ, "channel-7", tx, 1000, 100)
            return plan_nodes(plan, await index_parents(conn))

    nodes = asyncio.run(run())
    assert any(n.startswith("Index") and n.endswith("invoice_events_channel") for n in nodes), nodes
    assert not any(n.startswith(("Seq Scan", "Sort", "Bitmap")) for n in nodes), nodes
