"""The outbox relay against the national platform's simulator (part of the product, started as make run starts
it): every record held once though requests fail, answers are lost and the platform goes down; Retry-After
honoured; a refused record parked with its reason, later records of its invoice behind it, both sent again on
demand; a wrong key delivers nothing; the backlog's gauges."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

import aiohttp
import asyncpg
import httpx
import msgspec
import orjson
import pytest

from core import campaign as campaigns
from core import contract
from core import settings as config
from core.outbox import NATIONAL
from core.settings import Settings
from deploy.devstack import VENV_BIN
from gateway.model import Invoice
from gateway.parse import decode
from gateway.validate import check
from loadtest import sample
from loadtest.client import SignedClient
from tests.integration.helpers import scratch_database
from workers import national
from workers.judge import Judgement
from workers.national import Row
from workers.relay import PENDING as PENDING_RECORDS
from workers.relay import Relay
from workers.seal import seal_all
from workers.sink import Judged, prepare, write

CAMPAIGN = "hefei-2026-sharded"
PENDING = "SELECT count(*) FROM outbox WHERE destination = 'national' AND delivered_at IS NULL AND parked_at IS NULL"


@pytest.fixture(scope="module")
def platform(stack: Any, settings: Settings) -> Iterator[str]:
    """The simulator's URL (the session's stack names it in GATEWAY_EXPORT_URL); started once, cleared after."""
    url = stack.env["GATEWAY_EXPORT_URL"]
    if not _alive(url):
        stack.start_national_simulator()
    control(url, clear=True)
    # What the tests before these left in the outbox (thousands of records), delivered first in large batches:
    # each test below then works on its own few records.
    relay_until(quick(settings, export_batch=1000), nothing_pending, timeout_s=120)
    yield url
    control(url, clear=True, error_rate=0.0, qps=0.0)


def _alive(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def control(url: str, **changes: Any) -> dict[str, Any]:
    resp = httpx.post(f"{url}/sandbox/control", json=changes)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def held(url: str) -> dict[str, Any]:
    return dict(httpx.get(f"{url}/sandbox/received").json())


def quick(settings: Settings, **changes: Any) -> Settings:
    """The relay's settings for a test: short backoffs, a fast cap."""
    tuned = {"export_backoff_max_s": 0.4, "export_breaker_cooldown_s": 0.3, "export_qps": 200.0, "export_poll_ms": 20}
    return config.replace(settings, **{**tuned, **changes})


def relay_until(
    settings: Settings, done: Callable[[asyncpg.Pool], Any], timeout_s: float = 60.0, during: Any = None
) -> Relay:
    """Step a relay (in this process) until ``done(pool)`` is true; ``during(step)`` runs before each step."""

    async def run() -> Relay:
        pool = await asyncpg.create_pool(settings.stores.database_url, min_size=1, max_size=2)
        session = aiohttp.ClientSession()
        relay = Relay(pool, session, settings.export, CAMPAIGN)
        deadline = time.monotonic() + timeout_s
        try:
            step = 0
            while not await done(pool):
                assert time.monotonic() < deadline, "the relay did not get there in time"
                if during is not None:
                    during(step)
                step += 1
                await asyncio.sleep(min(await relay.step(), 1.0))
            return relay
        finally:
            await session.close()
            await pool.close()

    return asyncio.run(run())


async def nothing_pending(pool: asyncpg.Pool) -> bool:
    return await pool.fetchval(PENDING) == 0


def delivered_ids(sql: Any, after: int) -> set[str]:
    """The platform's ids of every record delivered from outbox rows after ``after``."""
    rows = sql(
        "SELECT id, subject, kind, record FROM outbox WHERE destination = $1 AND delivered_at IS NOT NULL AND id > $2",
        NATIONAL,
        after,
    )
    return {
        r["id"]
        for row in rows
        for r in national.records(Row(row["id"], row["subject"], row["kind"], orjson.loads(row["record"])), CAMPAIGN)
    }


def test_every_record_is_held_once_though_requests_fail_and_the_platform_goes_down(
    settings: Settings, platform: str, channel: SignedClient, drain: Any, sql: Any
) -> None:
    control(platform, clear=True, error_rate=0.5)
    after = sql("SELECT coalesce(max(id), 0) FROM outbox")[0][0]
    rng = random.Random()
    channel.upload([sample.invoice(rng) for _ in range(30)])
    drain()
    outage_at: list[float] = []

    def go_down(step: int) -> None:
        if step == 3:
            control(platform, outage_s=1.5)
            outage_at.append(time.monotonic())

    relay_until(quick(settings, export_batch=5), nothing_pending, during=go_down)
    platform_now = held(platform)
    requests = platform_now["requests"]
    assert requests.get("500", 0) + requests.get("500 after storing", 0) > 0 and requests.get("503", 0) > 0
    assert requests.get("500 after storing", 0) > 0 and platform_now["outcomes"].get("duplicate", 0) > 0
    ids = [r["id"] for r in platform_now["records"]]
    assert len(ids) == len(set(ids)) == platform_now["count"]
    assert set(ids) == delivered_ids(sql, after)  # every delivered record held, nothing held that was not delivered
    assert time.monotonic() - outage_at[0] >= 1.5  # the relay waited the outage out (Retry-After)


def test_retry_after_of_a_busy_platform_is_honoured(
    settings: Settings, platform: str, channel: SignedClient, drain: Any
) -> None:
    control(platform, clear=True, error_rate=0.0, qps=2)
    channel.upload([sample.invoice(random.Random()) for _ in range(8)])
    drain()
    started = time.monotonic()
    relay_until(quick(settings, export_batch=4), nothing_pending)
    requests = held(platform)["requests"]
    control(platform, qps=0)
    # Each 429 made the relay wait its Retry-After (1 s), so it never asked more than once per refusal window.
    assert requests.get("429", 0) >= 1
    assert requests["429"] <= requests["200"] + 1
    assert time.monotonic() - started >= requests["200"] / 2 - 1


def test_a_refused_record_is_parked_later_ones_wait_behind_it_and_both_can_be_sent_again(
    stack: Any, settings: Settings, platform: str, sql: Any
) -> None:
    control(platform, clear=True, error_rate=0.0)
    camp = campaigns.load(settings.campaign_file)
    inv = sample.invoice(random.Random(), ending="994")  # the platform's sandbox refuses its records
    (decoded,) = decode(orjson.dumps({"invoices": [inv]}), False, 1)  # as the gateway reads an upload
    assert isinstance(decoded, Invoice)
    q = contract.unpack(msgspec.msgpack.encode(check(decoded, camp, "demo-channel", "k", 1)))

    async def commit_then(step: Any) -> None:
        pool = await asyncpg.create_pool(settings.stores.database_url, min_size=1, max_size=2, init=prepare)
        try:
            await step(pool)
        finally:
            await pool.close()

    asyncio.run(commit_then(lambda pool: write(pool, [Judged(q, Judgement("verified"), dt.datetime.now(dt.UTC))], [])))
    relay_until(quick(settings), nothing_pending)  # its receipt is refused: parked
    asyncio.run(commit_then(lambda pool: seal_all(pool, 1000)))  # then it is fed: a later record of it
    relay_until(quick(settings), nothing_pending)
    parked = sql("SELECT id, parked_reason, parked_after FROM outbox WHERE subject = $1 ORDER BY id", q.key)
    assert len(parked) == 2
    assert parked[0]["parked_reason"].startswith("invalid: sandbox_refused_invoice (record ")
    assert parked[1]["parked_after"] == parked[0]["id"] and "waits behind parked record" in parked[1]["parked_reason"]
    assert not [r for r in held(platform)["records"] if r.get("key") == q.key]
    listed = _command(stack, "outbox", "parked")
    assert f"{parked[0]['id']} {q.key} invoice parked" in listed and "sandbox_refused_invoice" in listed
    assert "2 records of national will be sent again" in _command(stack, "outbox", "resend", str(parked[0]["id"]))
    assert sql("SELECT count(*) FROM outbox WHERE subject = $1 AND parked_at IS NULL", q.key)[0][0] == 2
    relay_until(quick(settings), nothing_pending)  # the platform refuses it again: parked again, never dropped
    again = sql("SELECT attempts, parked_at FROM outbox WHERE subject = $1 ORDER BY id", q.key)
    assert [r["attempts"] for r in again] == [2, 2] and all(r["parked_at"] for r in again)


def test_a_relay_with_the_wrong_key_delivers_nothing_and_the_backlog_shows(
    settings: Settings, platform: str, base_url: str, channel: SignedClient, drain: Any
) -> None:
    control(platform, clear=True)
    channel.upload([sample.invoice(random.Random())])
    drain()
    wrong = quick(settings, export_secret="not-the-platforms-key")

    async def five_steps() -> int:
        pool = await asyncpg.create_pool(settings.stores.database_url, min_size=1, max_size=2)
        session = aiohttp.ClientSession()
        try:
            relay = Relay(pool, session, wrong.export, CAMPAIGN)
            for _ in range(5):
                await relay.step()
            return int(await pool.fetchval(PENDING))
        finally:
            await session.close()
            await pool.close()

    assert asyncio.run(five_steps()) > 0
    assert held(platform)["count"] == 0 and held(platform)["requests"]["401"] >= 1
    metrics = httpx.get(f"{base_url}/metrics").text
    pending = _gauge(metrics, 'gateway_export_pending_records{destination="national"}')
    assert pending > 0 and _gauge(metrics, 'gateway_export_oldest_pending_age_seconds{destination="national"}') > 0
    relay_until(quick(settings), nothing_pending)
    assert _gauge(httpx.get(f"{base_url}/metrics").text, 'gateway_export_pending_records{destination="national"}') == 0


def _gauge(text: str, series: str) -> float:
    line = next(line for line in text.splitlines() if line.startswith(series + " "))
    return float(line.rsplit(" ", 1)[1])


def _command(stack: Any, *argv: str) -> str:
    done = subprocess.run([str(VENV_BIN / "gateway-worker"), *argv], env=stack.env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_the_look_for_pending_records_does_not_grow_with_the_records_parked(settings: Settings) -> None:
    """The relay asks, for each pending record of its batch, for the first parked record of its subject ahead of
    it. With 3,000 parked records of other invoices (refused by the platform, not sent again yet) a batch of 200
    reads the rows it needs, not every parked record once per pending one (600,000 rows read and filtered out,
    200 ms); and the pending record of a parked invoice names the record it waits behind."""

    async def run(conn: asyncpg.Connection) -> tuple[list[asyncpg.Record], int]:
        await conn.execute(
            "INSERT INTO outbox (destination, subject, kind, record, parked_at, parked_reason)"
            " SELECT 'national', 'parked-' || g, 'invoice', '{}', now(), 'invalid' FROM generate_series(1, 3000) g"
        )
        await conn.execute(
            "INSERT INTO outbox (destination, subject, kind, record)"
            " SELECT 'national', CASE g WHEN 7 THEN 'parked-5' ELSE 'pending-' || g END, 'invoice', '{}'"
            " FROM generate_series(1, 200) g"
        )
        found = await conn.fetch(PENDING_RECORDS, NATIONAL, 200)
        plan = await conn.fetchval("EXPLAIN (ANALYZE, FORMAT JSON) " + PENDING_RECORDS, NATIONAL, 200)
        return found, rows_filtered(orjson.loads(plan)[0]["Plan"])

    def rows_filtered(node: dict[str, Any]) -> int:
        here = node.get("Rows Removed by Filter", 0) * node.get("Actual Loops", 1)  # EXPLAIN gives it a loop
        return int(here) + sum(rows_filtered(n) for n in node.get("Plans", []))

    async def scratch() -> tuple[list[asyncpg.Record], int]:
        async with scratch_database(settings, "relay_parked") as conn:
            return await run(conn)

    found, filtered = asyncio.run(scratch())
    parked_5 = [r["behind"] for r in found if r["subject"] == "parked-5"]
    assert len(found) == 200 and [r["subject"] for r in found if r["behind"] is not None] == ["parked-5"]
    assert parked_5 == [5]  # the 5th parked record's id: the ids were given in insertion order
    assert filtered < 1_000, filtered
