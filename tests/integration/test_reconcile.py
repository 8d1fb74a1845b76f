"""Reconciliation and the closing of days on the real stack: a committed key is explained, a row deleted by hand
is named (and the command exits 1), a queued key and a dead letter are where they are; a closed day is written
as files once, sent once, and its figures are watched for change."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import subprocess
from pathlib import Path
from typing import Any

import asyncpg
import orjson

from core import campaign as campaigns
from core import keys, rollup
from core.rollup import Deltas, Rollup
from core.settings import Settings
from core.stores import open_redis
from deploy.devstack import VENV_BIN
from loadtest import sample
from loadtest.client import SignedClient
from tests.integration.test_reports import days_now
from workers.closing import Closer

SHARDS = 4
PAST = dt.date(2026, 6, 1)  # a day no other test touches


def reconciled(base_url: str, day: dt.date) -> dict[str, Any]:
    with SignedClient(base_url, "demo-auditor", "demo-auditor-secret") as auditor:
        resp = auditor.request("GET", f"/v1/admin/reconciliation?date={day}&limit=100000")
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def line_of(found: dict[str, Any], key: str) -> tuple[str, dict[str, Any]]:
    for kind in ("explained", "unexplained"):
        for line in found[kind]:
            if line["key"] == key:
                return kind, line
    raise AssertionError(f"{key} is not in the reconciliation")


def command(stack: Any, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(VENV_BIN / argv[0]), *argv[1:]], env=stack.env, capture_output=True, text=True)


async def with_closer(settings: Settings, body: Any) -> Any:
    """``body(pool, closer)`` with a pool and a day closer of the test campaign."""
    camp = campaigns.load(settings.campaign_file)
    pool = await asyncpg.create_pool(settings.stores.database_url, min_size=1, max_size=2)
    redis = open_redis(settings.stores)
    try:
        return await body(pool, Closer(pool, redis, Rollup.of(camp), camp.id, SHARDS))
    finally:
        await redis.aclose()
        await pool.close()


def test_a_committed_key_is_explained_and_its_row_deleted_by_hand_is_named(
    stack: Any, settings: Settings, base_url: str, channel: SignedClient, drain: Any, sql: Any
) -> None:
    key = channel.upload([sample.invoice(random.Random())]).json()["results"][0]["key"]
    drain()
    _, today = days_now(settings)
    kind, line = line_of(reconciled(base_url, today), key)
    assert kind == "explained" and line["status"] == "eligible" and line["why"].startswith("fed in batch ")
    sql("DELETE FROM invoices WHERE key = $1", key)
    kind, line = line_of(reconciled(base_url, today), key)
    assert kind == "unexplained" and "its row is missing from invoices" in line["why"]
    done = command(stack, "gateway", "reconcile", "--date", today.isoformat())
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"UNEXPLAINED {key}" in done.stdout and "NOT OK" in done.stdout


def test_a_queued_key_is_explained_and_a_dead_letter_is_not(
    settings: Settings, base_url: str, channel: SignedClient, drain: Any
) -> None:
    rng = random.Random()
    queued = channel.upload([sample.invoice(rng)]).json()["results"][0]["key"]
    dead = sample.invoice(rng)
    dead_key = channel.upload([dead]).json()["results"][0]["key"]

    async def set_aside() -> None:
        """What the workers do with an entry delivered too often: a copy in the dead letters, gone from intake."""
        redis = open_redis(settings.stores)
        try:
            for shard in range(SHARDS):
                for entry_id, fields in await redis.xrange(keys.stream(shard)):
                    if dead_key.encode() in fields:
                        letter = {**fields, b"~entry": entry_id, b"~reason": b"delivered 5 times without success"}
                        await redis.xadd(keys.dead_letters(shard), letter)
                        await redis.xdel(keys.stream(shard), entry_id)
        finally:
            await redis.aclose()

    asyncio.run(set_aside())
    _, today = days_now(settings)
    found = reconciled(base_url, today)
    kind, line = line_of(found, queued)
    assert kind == "explained" and line["where"] == "stream" and line["why"].startswith("queued in the intake stream")
    kind, line = line_of(found, dead_key)
    assert kind == "unexplained" and line["why"] == "set aside as a dead letter: delivered 5 times without success"
    drain()


def test_only_auditors_and_admins_reconcile(base_url: str, channel: SignedClient) -> None:
    assert channel.request("GET", "/v1/admin/reconciliation?date=2026-03-01").json()["code"] == "wrong_role"
    with SignedClient(base_url, "demo-admin", "demo-admin-secret") as admin:
        assert admin.request("GET", "/v1/admin/reconciliation?date=2026-03-01").status_code == 200
        for query in ("limit=5", "date=2026-03-01&limit=0", "date=03/01/2026"):
            resp = admin.request("GET", f"/v1/admin/reconciliation?{query}")
            assert resp.status_code == 400 and resp.json()["code"] == "bad_parameter", query


def test_a_closed_day_is_written_and_sent_once_and_watched_for_change(
    stack: Any, settings: Settings, base_url: str, channel: SignedClient, drain: Any, sql: Any, tmp_path: Path
) -> None:
    async def add(pool: asyncpg.Pool, *cells: tuple[str, int, int]) -> None:
        deltas = Deltas()
        for metric, count, amount in cells:
            deltas.add(PAST, "demo-channel", "catering", metric, "", count, amount)
        async with pool.acquire() as conn:
            await rollup.apply(conn, deltas)
            await conn.execute("INSERT INTO tally_parts VALUES ('old-request', 'pre', $1)", PAST)

    async def close_twice(pool: asyncpg.Pool, closer: Closer) -> tuple[Any, Any]:
        await add(pool, ("received", 5, 50000), ("accepted", 4, 0), ("eligible", 2, 30000))
        return await closer.close(PAST, tmp_path), await closer.close(PAST, tmp_path)

    first, again = asyncio.run(with_closer(settings, close_twice))
    assert first == again and first["days"][0]["received"] == 5 and first["days"][0]["closed"] is True
    written = orjson.loads((tmp_path / f"daily-{PAST}.json").read_bytes())
    assert written == first
    csv_lines = (tmp_path / f"daily-{PAST}.csv").read_text().splitlines()
    assert csv_lines[0].startswith("date,channel,industry,received,received_amount_fen,accepted")
    assert csv_lines[1].startswith(f"{PAST},*,*,5,50000,4,")
    records = sql("SELECT kind, record FROM outbox WHERE subject = $1", f"report:{PAST}")
    assert [r["kind"] for r in records] == ["report"] and orjson.loads(records[0]["record"]) == first
    assert sql("SELECT count(*) FROM tally_parts WHERE day <= $1", PAST)[0][0] == 0
    with SignedClient(base_url, "demo-auditor", "demo-auditor-secret") as auditor:
        assert auditor.request("GET", f"/v1/reports/daily?date={PAST}").json()["days"][0]["closed"] is True
    closed_check = next(t for t in reconciled(base_url, PAST)["totals"] if t["figure"] == "closed report")
    assert closed_check["ok"]
    asyncio.run(
        with_closer(settings, lambda pool, closer: add(pool, ("received", 1, 100)))
    )  # a closed day must never change
    closed_check = next(t for t in reconciled(base_url, PAST)["totals"] if t["figure"] == "closed report")
    assert not closed_check["ok"] and closed_check["report"] == 2  # received and its amount changed


def test_days_close_in_order_once_their_entries_are_processed(
    stack: Any, settings: Settings, channel: SignedClient, drain: Any, sql: Any, tmp_path: Path
) -> None:
    camp = campaigns.load(settings.campaign_file)
    r = Rollup.of(camp)
    _, today = days_now(settings)
    channel.upload([sample.invoice(random.Random())])  # queued: today cannot close

    async def check(pool: asyncpg.Pool, closer: Closer) -> tuple[bool, bool, list[dt.date]]:
        later = dt.datetime.combine(PAST + dt.timedelta(days=2), dt.time(3), r.zone)  # 03:00, past the close hour
        return await closer.quiet(today), await closer.quiet(PAST), await closer.close_due(later, 2, tmp_path)

    quiet_today, quiet_past, closed = asyncio.run(with_closer(settings, check))
    assert not quiet_today and quiet_past
    assert PAST in closed or sql("SELECT 1 FROM report_days WHERE day = $1", PAST)  # closed here or just before
    assert PAST + dt.timedelta(days=1) not in closed  # nothing happened that day: nothing to close
    assert (tmp_path / f"daily-{PAST}.json").exists()
    refused = command(stack, "gateway-worker", "close-day", "--date", today.isoformat())
    assert refused.returncode == 1 and "is not over yet" in refused.stderr
    done = command(stack, "gateway-worker", "close-day", "--date", (PAST + dt.timedelta(days=4)).isoformat())
    assert done.returncode == 0 and "closed at" in done.stdout, done.stdout + done.stderr
    assert sql("SELECT count(*) FROM report_days WHERE day = $1", PAST + dt.timedelta(days=4))[0][0] == 1
    drain()
