"""The export process (``gateway-worker export``): the relay of the outbox to the national platform
(workers/relay.py), a relay per channel webhook (workers/webhook.py), the closing of the days due
(workers/closing.py) and the expiry of prizes not paid in time (core/prizes.py), side by side until SIGTERM; and
the commands that look after them: ``gateway-worker outbox parked | resend``, ``gateway-worker close-day``."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import signal
import sys
from pathlib import Path

import aiohttp
import asyncpg
from redis.exceptions import RedisError

from core import campaign as campaigns
from core import prizes
from core.rollup import Rollup
from core.settings import Export, Settings
from core.stores import open_pool, open_redis
from workers import webhook
from workers.closing import Closer
from workers.relay import Relay

log = logging.getLogger(__name__)


async def run_export(settings: Settings, handle_signals: bool = True) -> None:
    """The export process's wiring: the relay to the national platform, and the closing of days, until stopped."""
    campaign = campaigns.load(settings.campaign_file)
    pool = await open_pool(settings.stores, 3, timed=False)
    redis = open_redis(settings.stores)
    session = aiohttp.ClientSession()
    stopping = asyncio.Event()
    if handle_signals:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stopping.set)
    closer = Closer(pool, redis, Rollup.of(campaign), campaign.id, campaign.dedup.shards)
    try:
        await asyncio.gather(
            Relay(pool, session, settings.export, campaign.id).run(stopping),
            Webhooks(pool, session, settings.export, campaign.id).run(stopping),
            close_forever(closer, settings, stopping),
            expire_forever(pool, stopping),
        )
    finally:
        await session.close()
        await pool.close()
        await redis.aclose()


WEBHOOKS = """
SELECT w.channel, w.url, c.secret FROM webhooks w JOIN api_clients c ON c.client_id = w.channel ORDER BY w.channel
"""


class Webhooks:
    """One relay per channel webhook, started, restarted (its URL or the channel's secret changed) and stopped as
    the ``webhooks`` table says, looked at every ``every_s``."""

    def __init__(
        self, pool: asyncpg.Pool, session: aiohttp.ClientSession, export: Export, campaign: str, every_s: float = 5.0
    ) -> None:
        self.pool, self.session, self.export, self.campaign, self.every_s = pool, session, export, campaign, every_s
        self.running: dict[str, tuple[tuple[str, str], asyncio.Event, asyncio.Task[None]]] = {}

    async def run(self, stopping: asyncio.Event) -> None:
        try:
            while not stopping.is_set():
                try:
                    self.follow({r["channel"]: (r["url"], r["secret"]) for r in await self.pool.fetch(WEBHOOKS)})
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                    log.warning("webhooks cannot be read now: %s", exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), self.every_s)
        finally:
            tasks = [task for _, _, task in self.running.values()]
            self.follow({})
            await asyncio.gather(*tasks, return_exceptions=True)

    def follow(self, wanted: dict[str, tuple[str, str]]) -> None:
        """Start what is wanted and not running, stop what runs and is not wanted (or not as it runs)."""
        for channel, (how, stop, _) in list(self.running.items()):
            if wanted.get(channel) != how:
                stop.set()
                del self.running[channel]
        for channel, (url, secret) in wanted.items():
            if channel not in self.running:
                stop = asyncio.Event()
                relay = Relay(
                    self.pool,
                    self.session,
                    self.export,
                    self.campaign,
                    webhook.destination(channel),
                    webhook.Webhook(channel),
                    url=url,
                    secret=secret,
                )
                self.running[channel] = ((url, secret), stop, asyncio.create_task(relay.run(stop)))


async def close_forever(closer: Closer, settings: Settings, stopping: asyncio.Event, every_s: float = 60.0) -> None:
    folder = Path(settings.reports.dir)
    while not stopping.is_set():
        try:
            await closer.close_due(dt.datetime.now(dt.UTC), settings.reports.close_hour, folder)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, RedisError) as exc:
            log.warning("closing days failed, will retry: %s", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), every_s)


async def expire_forever(pool: asyncpg.Pool, stopping: asyncio.Event, every_s: float = 60.0) -> None:
    """Payable prizes whose channel did not confirm them paid by their deadline expire (unclaimed)."""
    while not stopping.is_set():
        try:
            async with pool.acquire() as conn, conn.transaction():
                expired = await prizes.expire_due(conn, dt.datetime.now(dt.UTC), "export (prize expiry)")
            if expired:
                log.info("%d prizes expired unclaimed", expired)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("expiring prizes failed, will retry: %s", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), every_s)


async def close_day(settings: Settings, day: dt.date | None) -> int:
    campaign = campaigns.load(settings.campaign_file)
    rollup = Rollup.of(campaign)
    today = rollup.day(dt.datetime.now(dt.UTC))
    day = day or today - dt.timedelta(days=1)
    if day >= today:
        print(f"{day} is not over yet (today is {today} in {rollup.zone.key}): nothing closed", file=sys.stderr)
        return 1
    pool = await open_pool(settings.stores, 1, timed=False)
    redis = open_redis(settings.stores)
    try:
        closer = Closer(pool, redis, rollup, campaign.id, campaign.dedup.shards)
        if not await closer.quiet(day):
            print(f"{day}: entries of it are still queued in the intake streams: not closed", file=sys.stderr)
            return 1
        found = await closer.close(day, Path(settings.reports.dir))
    finally:
        await pool.close()
        await redis.aclose()
    if found is None:
        print("another process is closing days now: try again", file=sys.stderr)
        return 1
    print(f"{day} closed at {found['closed_at']}: {Path(settings.reports.dir) / f'daily-{day}'}.json and .csv")
    return 0


async def outbox_command(settings: Settings, action: str, ids: list[int], every: bool, destination: str) -> int:
    conn = await asyncpg.connect(settings.stores.database_url)
    try:
        if action == "parked":
            rows = await conn.fetch(PARKED, destination)
            for r in rows:
                at = f"{r['parked_at']:%Y-%m-%d %H:%M:%S}"
                print(f"{r['id']} {r['subject']} {r['kind']} parked {at}: {r['parked_reason']}")
            print(f"{len(rows)} parked records for {destination}")
            return 0
        if not ids and not every:
            print("resend: name the records (ids), or --all", file=sys.stderr)
            return 2
        resent = await conn.fetch(RESEND, destination, ids, every)
        print(f"{len(resent)} records of {destination} will be sent again")
        return 0
    finally:
        await conn.close()


PARKED = """
SELECT id, subject, kind, parked_at, parked_reason FROM outbox
WHERE destination = $1 AND delivered_at IS NULL AND parked_at IS NOT NULL ORDER BY id
"""
RESEND = """
UPDATE outbox SET parked_at = NULL, parked_reason = NULL, parked_after = NULL
WHERE destination = $1 AND delivered_at IS NULL AND parked_at IS NOT NULL
  AND ($3 OR id = ANY($2::bigint[]) OR parked_after = ANY($2::bigint[]))
RETURNING id
"""
