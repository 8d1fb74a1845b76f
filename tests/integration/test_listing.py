"""A channel's list of its consumer's invoices (GET /v1/invoices?user=ID)."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from typing import Any

from core.settings import Settings
from gateway.listing import READ
from loadtest import sample
from loadtest.client import SignedClient
from tests.integration.helpers import empty_tables, index_parents, plan_nodes, scratch_database


def listing(client: SignedClient, query: str) -> Any:
    resp = client.request("GET", f"/v1/invoices?{query}")
    return resp


def test_a_consumer_sees_its_own_invoices_in_pages_and_no_one_elses(
    channel: SignedClient, channel2: SignedClient, drain: Any
) -> None:
    rng = random.Random()
    who = f"list-{rng.randrange(10**9)}"
    user = {"id": who, "device_id": f"d-{who}", "real_name": "张三"}
    mine = [sample.invoice(rng, user=user) for _ in range(2)]  # the campaign's cap: 2 a day per person
    results = channel.upload(mine).json()["results"]
    assert [r["status"] for r in results] == ["accepted", "accepted"]
    keys = [r["key"] for r in results]
    channel2.upload([sample.invoice(rng, user=user)])  # the same user id at another channel: another consumer
    channel.upload([sample.invoice(rng)])  # another consumer of this channel
    drain()
    whole = listing(channel, f"user={who}").json()
    assert [i["key"] for i in whole["invoices"]] == sorted(keys)  # one acceptance time: by key
    assert whole["next"] is None
    assert all(i["status"] == "eligible" and i["amount_fen"] > 0 and i["accepted_at"] for i in whole["invoices"])
    first = listing(channel, f"user={who}&limit=1").json()
    second = listing(channel, f"user={who}&limit=1&after={first['next']}").json()
    assert [i["key"] for i in first["invoices"] + second["invoices"]] == [i["key"] for i in whole["invoices"]]
    assert listing(channel2, f"user={who}").json()["invoices"][0]["key"] not in keys
    assert listing(channel, f"user={who}&from=2000-01-01&to=2000-12-31").json()["invoices"] == []


def test_a_listing_without_a_user_or_with_a_bad_date_is_refused(channel: SignedClient) -> None:
    for query in ("limit=5", "user=", "user=u1&from=2026-13-01", "user=u1&to=yesterday", "user=u1&after=x"):
        resp = listing(channel, query)
        assert resp.status_code == 400 and resp.json()["code"] == "bad_parameter", query


def test_the_list_finds_a_users_invoices_by_index_however_large_the_table(settings: Settings) -> None:
    async def run() -> tuple[list[str], set[str]]:
        async with scratch_database(settings, "listing_scale") as conn:
            # 200,000 invoices of 20,000 consumers.
            await conn.execute(
                "INSERT INTO invoices (key, channel, number, code, issue_date, amount_fen, seller_tax_id, seller_name,"
                " category, person, user_ref, device_ref, status, accepted_at, updated_at)"
                " SELECT g::text, 'c', g::text, '', '2026-03-01', 100, 's', '', '', 'p', 'u' || (g % 20000), 'd',"
                " 'eligible', now() - g * interval '1 second', now() FROM generate_series(1, 200000) g"
            )
            await conn.execute("ANALYZE invoices")
            far = dt.datetime(9999, 1, 1, tzinfo=dt.UTC)
            since = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
            plan = await conn.fetchval("EXPLAIN (FORMAT JSON) " + READ, "u7", "c", since, far, 0, "", 100)
            return plan_nodes(plan, await index_parents(conn)), await empty_tables(conn)

    nodes, empty = asyncio.run(run())
    assert any(n.endswith("invoices_user") for n in nodes), nodes
    # Months without a row (the coming months' partitions, the default one) cost nothing to scan.
    assert not any(n.startswith("Seq Scan") and n.split()[-1] not in empty for n in nodes), nodes
