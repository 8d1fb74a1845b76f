"""Watching the pipeline behind the gateway: backlog, oldest unprocessed entry, drain rate; saturation with
hysteresis, so that admission does not flap.

Every ``interval_s`` one pipelined round trip reads, per intake shard, the stream's length and its first entry
(workers delete entries once committed, so the first is the oldest unprocessed one), and the workers' running
total of invoices processed (``pipeline:done``). Saturation begins when the oldest entry is older than
``high_age_s`` or the backlog exceeds ``high_backlog`` entries, and ends only when both are below their low
marks for ``calm_polls`` polls in a row (by default 4 polls of 0.5 s: 2 s).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import msgspec

from core import keys
from core.errors import STORE_ERRORS
from core.settings import Shed
from core.stores import RedisClient
from ratelimit import metrics
from ratelimit.shed import Admission

log = logging.getLogger(__name__)
READ_ERRORS: tuple[type[BaseException], ...] = (*STORE_ERRORS, ValueError)  # ValueError: an unreadable reply


class PipelineConfig(msgspec.Struct, frozen=True, kw_only=True):
    interval_s: float = 0.5
    high_age_s: float = 10.0
    low_age_s: float = 2.0
    high_backlog: int = 50_000
    low_backlog: int = 5_000
    calm_polls: int = 4
    processes: int = 1  # gateway processes sharing the drain (this one gets 1/processes of it)

    @classmethod
    def of(cls, shed: Shed) -> PipelineConfig:
        return cls(
            high_age_s=shed.high_age_s,
            low_age_s=shed.low_age_s,
            high_backlog=shed.high_backlog,
            low_backlog=shed.low_backlog,
            processes=shed.processes,
        )


class Reading(msgspec.Struct, frozen=True):
    backlog: int
    oldest_age_s: float
    done: int


class PipelineMonitor:
    def __init__(self, redis: RedisClient, shards: int, config: PipelineConfig, admission: Admission) -> None:
        self._redis = redis
        self._shards = shards
        self._config = config
        self._admission = admission
        self._calm = 0
        self._last: tuple[float, int] | None = None

    async def read(self) -> Reading:
        async with self._redis.pipeline(transaction=False) as pipe:
            for shard in range(self._shards):
                pipe.xlen(keys.stream(shard))
                pipe.xrange(keys.stream(shard), count=1)
            pipe.get(keys.PIPELINE_DONE)
            replies: list[Any] = await pipe.execute()
        now_ms = time.time() * 1000
        backlog, oldest_ms = 0, now_ms
        for shard in range(self._shards):
            backlog += int(replies[2 * shard])
            first = replies[2 * shard + 1]
            if first:
                oldest_ms = min(oldest_ms, int(first[0][0].split(b"-")[0]))
        return Reading(backlog, max(0.0, (now_ms - oldest_ms) / 1000), int(replies[-1] or 0))

    def judge(self, r: Reading) -> None:
        """Update the admission state from one reading."""
        c, a = self._config, self._admission
        if r.oldest_age_s >= c.high_age_s or r.backlog >= c.high_backlog:
            self._calm = 0
            if not a.saturated:
                log.warning("pipeline saturated: backlog %d entries, oldest %.1f s", r.backlog, r.oldest_age_s)
            a.saturated = True
        elif r.oldest_age_s <= c.low_age_s and r.backlog <= c.low_backlog:
            self._calm += 1
            if a.saturated and self._calm >= c.calm_polls:
                log.info("pipeline calm again: backlog %d entries, oldest %.1f s", r.backlog, r.oldest_age_s)
                a.saturated = False
        else:
            self._calm = 0
        now = time.monotonic()
        if self._last is not None and now > self._last[0]:
            rate = max(0, r.done - self._last[1]) / (now - self._last[0]) / c.processes
            a.drain_per_s = rate if a.drain_per_s == 0 else 0.7 * a.drain_per_s + 0.3 * rate
        self._last = (now, r.done)
        metrics.SATURATED.set(1 if a.saturated else 0)
        metrics.BACKLOG.set(r.backlog)
        metrics.OLDEST_AGE.set(r.oldest_age_s)
        metrics.DRAIN.set(a.drain_per_s)

    async def run_forever(self) -> None:
        while True:
            try:
                self.judge(await self.read())
            except READ_ERRORS as exc:
                # Without a reading the last state stands; dedup and caps fail closed on their own.
                log.warning("pipeline reading failed: %s", type(exc).__name__)
            await asyncio.sleep(self._config.interval_s)
