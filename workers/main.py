"""The worker: one class of small steps driven by one poll loop (read, verify, judge, write, ack), and the
sealer beside it. ``burst`` drains the stream and returns, which makes tests deterministic."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import socket
import time

import aiohttp
import asyncpg
from redis.asyncio import Redis
from redis.exceptions import RedisError

from dedup.rebuild import release_committed
from gateway.campaign import Campaign
from gateway.model import Queued
from gateway.settings import Settings
from ratelimit.caps import Caps
from workers import metrics, seal, sink, stream
from workers.judge import judge
from workers.release import Releaser
from workers.sink import Judged
from workers.verify import Verification, Verifier

log = logging.getLogger(__name__)
CLAIM_IDLE_MS = 30_000
CLAIM_EVERY_S = 5.0


class Worker:
    def __init__(
        self, settings: Settings, campaign: Campaign, redis: Redis, pool: asyncpg.Pool, verifier: Verifier
    ) -> None:
        self.settings = settings
        self.shards = campaign.dedup.shards
        self.caps = Caps(redis, campaign) if campaign.caps.ineligible_returns_slot else None
        self.releaser = Releaser(settings.inflight_grace_s)
        self.redis = redis
        self.pool = pool
        self.verifier = verifier
        self.consumer = f"{socket.gethostname()}-{os.getpid()}"
        self.stopping = asyncio.Event()

    async def run(self, burst: bool = False) -> int:
        """Process entries until stopped (or, in burst mode, until the stream is drained); returns entries done."""
        await stream.ensure_groups(self.redis, self.shards)
        # Keys a dead worker committed but never released from the in-flight hashes.
        await release_committed(self.redis, self.pool, self.shards, self.settings.inflight_grace_s)
        done = await self._drain_own_pending()
        sealer = None if burst else asyncio.create_task(self._seal_forever())
        last_claim = 0.0
        try:
            while not self.stopping.is_set():
                if time.monotonic() - last_claim > CLAIM_EVERY_S:
                    last_claim = time.monotonic()
                    done += await self.process(
                        await stream.claim_idle(
                            self.redis, self.consumer, self.shards, CLAIM_IDLE_MS, self.settings.worker_batch
                        )
                    )
                batch = await stream.read(
                    self.redis,
                    self.consumer,
                    self.shards,
                    self.settings.worker_batch,
                    self.settings.worker_block_ms,
                    pending=False,
                )
                await self.releaser.release_due(self.redis)
                if batch.empty and burst:
                    break
                done += await self.process(batch)
        finally:
            if sealer is not None:
                sealer.cancel()
        if burst:
            await seal.seal_all(self.pool, self.settings.seal_max_entries)
            if self.settings.inflight_grace_s <= 0:
                await self.releaser.release_due(self.redis, everything=True)
        return done

    async def _drain_own_pending(self) -> int:
        done = 0
        while not (
            batch := await stream.read(self.redis, self.consumer, self.shards, self.settings.worker_batch, 0, True)
        ).empty:
            done += await self.process(batch)
        return done

    async def process(self, batch: stream.Batch) -> int:
        """Verify and judge a batch, commit it in one transaction, then acknowledge it."""
        if batch.empty:
            return 0
        started = time.perf_counter()
        verifications = await asyncio.gather(*(self._verify(q) for q in batch.queued))
        judged = []
        for q, (v, at) in zip(batch.queued, verifications, strict=True):
            j = judge(q, v)
            judged.append(Judged(q, j, at))
            metrics.PROCESSED.labels(j.status, j.reason or "").inc()
        await sink.write(self.pool, judged, batch.dups)
        await stream.ack(self.redis, batch.ids, len(batch.queued))
        await self._give_back_slots([j.queued for j in judged if not j.judgement.feeds])
        self.releaser.schedule(batch.keys)
        metrics.BATCH_SECONDS.observe(time.perf_counter() - started)
        return sum(len(ids) for ids in batch.ids.values())

    async def _give_back_slots(self, invoices: list[Queued]) -> None:
        """Campaign setting: an invoice that will not be fed gives its cap slot back (idempotent, best effort)."""
        if self.caps is None or not invoices:
            return
        try:
            await self.caps.release(invoices)
        except (RedisError, OSError) as exc:
            log.warning("could not give back %d cap slots: %s", len(invoices), type(exc).__name__)

    async def _verify(self, q: Queued) -> tuple[Verification, dt.datetime | None]:
        started = time.perf_counter()
        v = await self.verifier.verify(q)
        metrics.VERIFY_SECONDS.observe(time.perf_counter() - started)
        return v, dt.datetime.now(dt.UTC) if v.outcome == "found" else None

    async def _seal_forever(self) -> None:
        every_s = self.settings.seal_interval_ms / 1000
        while True:
            await asyncio.sleep(every_s)
            try:
                sealed = await seal.seal_all(self.pool, self.settings.seal_max_entries)
                metrics.SEALED.inc(len(sealed))
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("sealing failed, will retry: %s", exc)


async def open_pool(settings: Settings) -> asyncpg.Pool:
    pool: asyncpg.Pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=4, init=sink.prepare)
    return pool


def open_session(settings: Settings) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=settings.worker_verify_concurrency, keepalive_timeout=30)
    return aiohttp.ClientSession(connector=connector)
