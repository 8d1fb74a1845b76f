"""``dedup rebuild`` beside intake: the runbook has operators run it while uploads go on, so its lock must block
nothing but another rebuild. (Its lock id was once the reversal lock's: every worker commit waited for the whole
rebuild, reversals failed, and a rebuild started beside an open commit said another rebuild was running.)"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from typing import Any

import asyncpg

from core import campaign as campaigns
from core import locks
from core import settings as config
from core.settings import Settings
from core.stores import open_redis
from dedup import rebuild
from loadtest import sample
from loadtest.client import SignedClient
from tests.integration.test_reversals import red, reverse


def scratch(settings: Settings) -> Settings:
    """The stack's PostgreSQL, a Redis database of the test's own: the rebuild's filters stay out of the way."""
    return config.replace(settings, redis_url=settings.stores.redis_url.rsplit("/", 1)[0] + "/6")


async def run_rebuild(settings: Settings, progress: rebuild.Progress) -> int:
    redis = open_redis(settings.stores)
    pool = await asyncpg.create_pool(settings.stores.database_url, min_size=1, max_size=3)
    try:
        await redis.flushdb()
        dedup = campaigns.load(settings.campaign_file).dedup
        return await rebuild.rebuild(redis, pool, dedup, 0.0, progress)
    finally:
        await redis.flushdb()
        await pool.close()
        await redis.aclose()


def test_uploads_commit_and_reversals_apply_while_a_rebuild_holds_its_lock(
    settings: Settings, channel: SignedClient, drain: Any, sql: Any
) -> None:
    rng = random.Random()
    fed = sample.invoice(rng)
    fed_key = channel.upload([fed]).json()["results"][0]["key"]
    drain()  # committed: the rebuild has at least one chunk to report, and the reversal a fed invoice to void
    midway, finish = threading.Event(), threading.Event()

    def progress(done: int, total: int) -> None:  # the rebuild holds its lock here, mid-way through the keys
        midway.set()
        finish.wait(60)

    outcome: list[int | BaseException] = []

    def rebuild_in_thread() -> None:
        try:
            outcome.append(asyncio.run(run_rebuild(scratch(settings), progress)))
        except BaseException as exc:  # reported below, on the test's thread
            outcome.append(exc)

    thread = threading.Thread(target=rebuild_in_thread)
    thread.start()
    try:
        assert midway.wait(30), "the rebuild never reached its first chunk"
        held = sql(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = $1 AND granted", locks.REBUILD
        )
        assert held[0][0] == 1
        key = channel.upload([sample.invoice(rng)]).json()["results"][0]["key"]
        started = time.monotonic()
        assert drain(timeout_s=20) >= 1  # the sink commits beside the rebuild, not after it
        assert channel.status(key).json()["status"] == "eligible"
        answer = reverse(channel, red(fed["number"]))
        took_s = time.monotonic() - started
        assert answer.status_code == 202, answer.text
        assert answer.json()["results"][0]["status"] == "reversed"
        assert took_s < 30
        assert thread.is_alive()  # all of it happened while the rebuild still held its lock
    finally:
        finish.set()
        thread.join(60)
    assert outcome and isinstance(outcome[0], int) and outcome[0] >= 1
    assert channel.status(fed_key).json()["status"] == "reversed"


def test_a_rebuild_starts_beside_an_open_sink_transaction(settings: Settings) -> None:
    async def body() -> int:
        conn = await asyncpg.connect(settings.stores.database_url)
        try:
            async with conn.transaction():
                # What every sink commit holds for its whole transaction.
                await conn.execute("SELECT pg_advisory_xact_lock_shared($1)", locks.REVERSAL)
                return await asyncio.wait_for(run_rebuild(scratch(settings), lambda done, total: None), 30)
        finally:
            await conn.close()

    assert asyncio.run(body()) >= 0
