"""The worker: one class of small steps driven by one poll loop (read, verify, judge, write, ack), and the
sealer beside it. ``burst`` drains the stream and returns, which makes tests deterministic."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import socket
import time
from collections import Counter
from collections.abc import Sequence

import asyncpg

from core import partitions
from core import settings as config
from core.campaign import Campaign
from core.contract import Queued
from core.errors import PASSING_ERRORS, STORE_ERRORS
from core.rollup import Rollup
from core.shards import digest, shard_of
from core.stores import RedisClient, open_pool
from dedup.inflight import Releaser, release_committed
from ratelimit.caps import Caps, Counted
from workers import confirm, metrics, risk, seal, sink, stream
from workers.http1 import Origin
from workers.judge import Defer, Judgement, judge
from workers.overlap import Overlap
from workers.recheck import Rechecks
from workers.reverify import Reverifier
from workers.sink import Judged
from workers.verify import Cache, Verification, Verified, Verifier

log = logging.getLogger(__name__)
# PostgreSQL connections per worker process beside one per batch in flight: the sealer, the re-verification
# and the confirmation of reversals.
SPARE_CONNECTIONS = 3
# The coming months' partitions are looked after hourly (and at start), and the sellers' days past the risk window
# removed (workers/risk.py).
PARTITIONS_EVERY_S = 3600.0
CONFIRM_EVERY_S = 1.0  # how often a worker looks for other channels' reversals to confirm (workers/confirm.py)


class Worker:
    def __init__(
        self,
        settings: config.Worker,
        verify: config.Verify,
        campaign: Campaign,
        redis: RedisClient,
        pool: asyncpg.Pool,
        verifier: Verifier,
        partitions_ahead_months: int = 2,
    ) -> None:
        self.settings = settings
        self.partitions_ahead_months = partitions_ahead_months
        self.verify = verify
        self.campaign = campaign
        self.shards = campaign.dedup.shards
        self.payout_hold_s = campaign.payout_hold_s
        self.reverify_entries = campaign.reverifies_entries
        self.rollup = Rollup.of(campaign)
        self.caps = Caps(redis, campaign) if campaign.caps.ineligible_returns_slot else None
        self.releaser = Releaser(settings.inflight_grace_s)
        self.rechecks = Rechecks(redis, self.shards, settings.recheck_lease_s)
        self.recheck_s = verify.recheck_delays_s()
        self.redis = redis
        self.pool = pool
        self.verifier = verifier
        self.reverifier = Reverifier(pool, verifier, campaign, settings.recheck_lease_s, verify.breaker_cooldown_s)
        self.cache = Cache(redis, verify.cache_s)
        self.consumer = f"{socket.gethostname()}-{os.getpid()}"
        self._last_claim = 0.0
        self._last_confirm = 0.0
        self.overlap: Overlap[stream.Batch] = Overlap(
            settings.in_flight, self.process, lambda exc: isinstance(exc, PASSING_ERRORS)
        )
        self.stopping = asyncio.Event()
        self.own: stream.Batch | None = None  # at start, the batch of this consumer's own pending entries
        # Entries of batches that failed otherwise than on a store's outage, left for another delivery (by when):
        # they are not this consumer's orphans.
        self.given_up: dict[bytes, float] = {}

    async def run(self, burst: bool = False) -> int:
        """Process invoices until stopped (in burst mode: until nothing is queued or waiting for a re-check,
        then seal); returns how many were committed."""
        holder = asyncio.create_task(self._hold_forever())  # from the start: this consumer's own pending too
        sealer = partitioner = reverifier = None
        try:
            done = await self._start()
            if not burst:
                sealer = asyncio.create_task(self._seal_forever())
                partitioner = asyncio.create_task(self._partitions_forever())
                reverifier = asyncio.create_task(self._reverify_forever())
            while not self.stopping.is_set():
                try:
                    more = await self._step(burst)
                except STORE_ERRORS as exc:
                    # Reading or claiming failed (a batch's own failure waits in the overlap, or stays pending
                    # for another worker when it may be its entries' fault: dead letters if they keep failing).
                    log.error("batch failed, will be retried: %s: %s", type(exc).__name__, exc)
                    await asyncio.sleep(1.0)
                    continue
                if not more:
                    break
            await self._finish_in_flight()
        finally:
            self.overlap.cancel()
            for task in (holder, sealer, partitioner, reverifier):
                if task is not None:
                    task.cancel()
        done += self.overlap.take_done()
        if burst:
            await self.reverify_due()
            await seal.seal_all(self.pool, self.settings.seal_max_entries, self.rollup)
            if self.settings.inflight_grace_s <= 0:
                await self.releaser.release_due(self.redis, everything=True)
        return done

    async def _start(self) -> int:
        """The groups, the keys a dead worker committed but never released from the in-flight hashes, and this
        consumer's own pending entries; again until the stores answer (a Redis failover in progress, say)."""
        while not self.stopping.is_set():
            try:
                await stream.ensure_groups(self.redis, self.shards)
                await release_committed(self.redis, self.pool, self.shards, self.settings.inflight_grace_s)
                await self._make_partitions()
                return await self._drain_own_pending()
            except STORE_ERRORS as exc:
                log.error("could not start, will try again: %s: %s", type(exc).__name__, exc)
                await asyncio.sleep(1.0)
        return 0

    async def _step(self, burst: bool) -> bool:
        """One round: idle entries of dead workers (now and then), due re-checks, new entries, each batch
        started beside those still in flight (``GATEWAY_WORKER_IN_FLIGHT``). Returns whether to go on (burst
        mode stops once nothing is queued, in flight or waiting for a re-check)."""
        s = self.settings
        await self.overlap.start_due()
        if time.monotonic() - self._last_claim > min(5.0, s.claim_idle_ms / 2000):
            self._last_claim = time.monotonic()
            await self._submit(await self._orphans())
            idle = await stream.claim_idle(
                self.redis, self.consumer, self.shards, s.claim_idle_ms, s.batch, s.max_deliveries
            )
            await self._submit(idle)
        await self._submit(stream.from_rechecks(await self.rechecks.take_due(s.batch)))
        if burst or time.monotonic() - self._last_confirm > CONFIRM_EVERY_S:
            self._last_confirm = time.monotonic()
            await confirm.confirm_due(self.pool, self.verifier, self.rollup, self.recheck_s, s.batch)
        batch = await stream.read(self.redis, self.consumer, self.shards, s.batch, s.block_ms, False)
        await self.releaser.release_due(self.redis)
        if batch.empty and burst:
            # Nothing new: the batches in flight finish first, since what they defer waits for a re-check.
            await self.overlap.drain()
            if (due_in_s := self.overlap.due_in_s()) is not None:  # a batch waits to be tried again
                await asyncio.sleep(min(due_in_s, 1.0))
                return True
            if not (orphans := await self._orphans()).empty:
                await self._submit(orphans)
                return True
            return await self._wait_for_rechecks()
        await self._submit(batch)
        return True

    async def _submit(self, batch: stream.Batch) -> None:
        if not batch.empty:
            _tell_dead(batch)
            await self.overlap.submit(batch)

    async def _hold_forever(self) -> None:
        """Every third of ``claim_idle_ms``, keep the entries of the batches in flight or waiting to be tried
        again from being taken over (workers/stream.py ``hold``)."""
        every_s = max(0.05, self.settings.claim_idle_ms / 3000)
        while True:
            await asyncio.sleep(every_s)
            ids = self._held_ids()
            if not ids:
                continue
            try:
                await stream.hold(self.redis, self.consumer, ids)
            except STORE_ERRORS as exc:
                log.warning("could not hold the entries in flight: %s: %s", type(exc).__name__, exc)

    def _held_ids(self) -> dict[int, list[bytes]]:
        """The entry ids of the batches in flight or waiting to be tried again, by shard."""
        ids: dict[int, list[bytes]] = {}
        for batch in [*self.overlap.held(), *([self.own] if self.own else [])]:
            for shard, shard_ids in batch.ids.items():
                ids.setdefault(shard, []).extend(shard_ids)
        return ids

    async def _orphans(self) -> stream.Batch:
        """Entries delivered to this consumer whose reply it lost (workers/stream.py ``orphans``): taken up
        without spending a delivery."""
        now = time.monotonic()
        for batch in self.overlap.take_given_up():
            for shard_ids in batch.ids.values():
                self.given_up.update(dict.fromkeys(shard_ids, now))
        forget = now - 2 * self.settings.claim_idle_ms / 1000  # taken over by then
        self.given_up = {i: at for i, at in self.given_up.items() if at > forget}
        held = {i for shard_ids in self._held_ids().values() for i in shard_ids} | self.given_up.keys()
        found = await stream.orphans(self.redis, self.consumer, self.shards, self.settings.batch, held)
        if not found.empty:
            lost = sum(len(ids) for ids in found.ids.values())
            log.warning("%d entries delivered to this worker were lost on the way: taken up", lost)
        return found

    async def _finish_in_flight(self) -> None:
        """Stopping: the batches in flight are committed and acknowledged first (or stay pending if they fail)."""
        while self.overlap.busy:
            try:
                await self.overlap.drain()
            except STORE_ERRORS as exc:
                log.error("batch failed, will be retried: %s: %s", type(exc).__name__, exc)

    async def _wait_for_rechecks(self) -> bool:
        """Burst mode: sleep until the next re-check is due (at most a second); False when none waits."""
        waiting, due_in_s = await self.rechecks.pending()
        if not waiting:
            return False
        await asyncio.sleep(min(due_in_s or 0.0, 1.0))
        return True

    async def _drain_own_pending(self) -> int:
        done = 0
        while not (
            batch := await stream.read(self.redis, self.consumer, self.shards, self.settings.batch, 0, True)
        ).empty:
            _tell_dead(batch)
            self.own = batch
            try:
                done += await self.process(batch)
            finally:
                self.own = None
        return done

    async def process(self, batch: stream.Batch) -> int:
        """Verify and judge a batch; commit the final answers in one transaction; then, in one round trip,
        schedule the rest for a re-check and acknowledge. Returns how many invoices were committed."""
        if batch.empty:
            return 0
        started = time.perf_counter()
        with metrics.STAGE_SECONDS.labels("cache").time():
            cached = await self.cache.get([(p.shard, p.queued.key) for p in batch.items])
            before = await sink.committed(self.pool, [p.queued.key for p in batch.items if p.queued.key not in cached])
        items = [p for p in batch.items if p.queued.key not in before]
        # Committed before (their answers gone with their in-flight claims): acknowledged, not verified again.
        committed: list[stream.Pending] = [p for p in batch.items if p.queued.key in before]
        if committed:
            log.info("%d invoices of a batch were committed before: acknowledged again", len(committed))
        # The risk rules need only what was uploaded: their query runs while the tax service answers.
        with metrics.STAGE_SECONDS.labels("verify").time():
            answers, risky = await asyncio.gather(
                self._verify_all([p.queued for p in items], cached),
                self._risky([p.queued for p in items]),
            )
        with metrics.STAGE_SECONDS.labels("cache").time():
            await self.cache.put(
                [
                    (p.shard, p.queued.key, v.invoice)
                    for p, (v, _) in zip(items, answers, strict=True)
                    if v.invoice is not None and p.queued.key not in cached
                ]
            )
        judged: list[Judged] = []
        deferred: list[tuple[stream.Pending, float, bool]] = []
        outcomes: Counter[tuple[str, str]] = Counter()  # counted once a batch: a metric update costs µs
        waits: Counter[str] = Counter()
        for p, (v, at) in zip(items, answers, strict=True):
            verdict = judge(
                p.queued,
                v,
                p.tries,
                self.recheck_s,
                self.verify.error_retries,
                self.verify.breaker_cooldown_s,
                self.campaign.eligibility,
            )
            if isinstance(verdict, Defer):
                deferred.append((p, verdict.delay_s, verdict.spend_try))
                waits[v.outcome] += 1
                continue
            if verdict.feeds and p.queued.key in risky:
                verdict = Judgement("held", risky[p.queued.key])
            outcomes[verdict.status, verdict.reason or ""] += 1
            judged.append(Judged(p.queued, verdict, at))
            committed.append(p)
        for outcome, n in waits.items():
            metrics.DEFERRED.labels(outcome).inc(n)
        for (status, reason), n in outcomes.items():
            metrics.PROCESSED.labels(status, reason).inc(n)
        with metrics.STAGE_SECONDS.labels("sink").time():
            rows = await sink.write(
                self.pool,
                judged,
                batch.dups,
                self.payout_hold_s,
                batch.tallies,
                self.rollup,
                self.reverify_entries,
                self.campaign.risk,
            )
        metrics.SINK_BATCH.observe(len(judged))
        metrics.SINK_ROWS.inc(rows)
        with metrics.STAGE_SECONDS.labels("settle").time():
            await stream.settle(self.redis, batch, deferred, committed)
            # A held invoice keeps its slot: a review may release it.
            await self._give_back_slots([j.queued for j in judged if j.judgement.status in ("ineligible", "reversed")])
        by_shard: dict[int, list[str]] = {}
        for p in committed:
            by_shard.setdefault(p.shard, []).append(p.queued.key)
        recorded: dict[int, list[str]] = {}  # the duplicates now in PostgreSQL, as the gateway noted them
        for d in batch.dups:
            recorded.setdefault(shard_of(digest(d.key), self.shards), []).append(f"{d.channel}|{d.key}")
        self.releaser.schedule(by_shard, recorded)
        metrics.BATCH_SECONDS.observe(time.perf_counter() - started)
        return len(committed)

    async def _risky(self, invoices: list[Queued]) -> dict[str, str]:
        """The risk rules' holds among the batch, by key: applied to those judged eligible (the others count
        too, as the invoices already committed do: a ticket farm's ineligible uploads are part of its trace)."""
        with metrics.STAGE_SECONDS.labels("risk").time():
            return await risk.holds(self.pool, invoices, self.campaign.risk)

    async def _give_back_slots(self, invoices: Sequence[Counted]) -> None:
        """Campaign setting: an invoice that will not be fed gives its cap slot back (idempotent, best effort)."""
        if self.caps is None or not invoices:
            return
        try:
            await self.caps.release(invoices)
        except STORE_ERRORS as exc:
            log.warning("could not give back %d cap slots: %s", len(invoices), type(exc).__name__)

    async def _verify_all(
        self, invoices: list[Queued], cached: dict[str, Verified]
    ) -> list[tuple[Verification, dt.datetime | None]]:
        """Each invoice's answer and when it was verified (None unless found): from the cache, or asked of the
        tax service (``Verifier.each``: a few tasks, not one an invoice)."""
        asked = iter(await self.verifier.each([q for q in invoices if q.key not in cached], self._verify))
        now = dt.datetime.now(dt.UTC)
        return [
            (Verification("found", c), now) if (c := cached.get(q.key)) is not None else next(asked) for q in invoices
        ]

    async def _verify(self, q: Queued) -> tuple[Verification, dt.datetime | None]:
        v = await self.verifier.verify(q)
        return v, dt.datetime.now(dt.UTC) if v.outcome == "found" else None

    async def reverify_due(self) -> int:
        """Verify again what is due before payout (workers/reverify.py), round after round until none is left;
        the slots of invoices withdrawn go back to their persons' caps. Returns how many were asked."""
        asked = 0
        while (n := await self.reverifier.round(self.settings.batch)) > 0:
            asked += n
            withdrawn, self.reverifier.withdrawn = self.reverifier.withdrawn, []
            await self._give_back_slots(withdrawn)
            if n < self.settings.batch:
                break
        return asked

    async def _reverify_forever(self) -> None:
        every_s = self.settings.seal_interval_ms / 1000
        while True:
            try:
                if not await self.reverify_due():
                    await asyncio.sleep(every_s)
            except STORE_ERRORS as exc:
                log.warning("re-verification failed, will retry: %s", exc)
                await asyncio.sleep(every_s)

    async def _seal_forever(self) -> None:
        every_s = self.settings.seal_interval_ms / 1000
        while True:
            await asyncio.sleep(every_s)
            try:
                sealed = await seal.seal_all(self.pool, self.settings.seal_max_entries, self.rollup)
                if sealed:
                    metrics.SEALED.inc(len(sealed))
                    metrics.LAST_SEALED.set(time.time())
            except STORE_ERRORS as exc:
                log.warning("sealing failed, will retry: %s", exc)

    async def _partitions_forever(self) -> None:
        while True:
            await asyncio.sleep(PARTITIONS_EVERY_S)
            await self._make_partitions()
            try:
                await risk.prune(self.pool, self.campaign.risk)
            except STORE_ERRORS as exc:
                log.warning("could not remove the sellers' days past the risk window, will retry: %s", exc)

    async def _make_partitions(self) -> None:
        """This month's partitions and the next ones' (core/partitions.py); a failure is retried next time."""
        try:
            async with self.pool.acquire() as conn:
                made = await partitions.ensure(conn, self.partitions_ahead_months)
        except STORE_ERRORS as exc:
            log.warning("could not create the coming months' partitions, will retry: %s", exc)
            return
        if made:
            log.info("created %d partitions for the coming months", made)


async def open_sink_pool(stores: config.Stores, in_flight: int) -> asyncpg.Pool:
    """The worker's PostgreSQL pool: each connection with the sink's staging tables; no statement timeout (a
    batch's transaction may rightly take seconds under a large backlog)."""
    return await open_pool(stores, max(1, in_flight) + SPARE_CONNECTIONS, timed=False, init=sink.prepare)


def open_origin(verify: config.Verify) -> Origin:
    """The tax service's connections: as many as calls in flight (the verifier caps them at its concurrency)."""
    return Origin(verify.url, timeout_s=verify.timeout_ms / 1000)


def _tell_dead(batch: stream.Batch) -> None:
    """Log and count the entries a batch sets aside as dead letters (once, however often it is tried)."""
    for shard, entry_id, reason, _ in batch.dead:
        log.error("dead letter %s of shard %d: %s", entry_id, shard, reason)
        metrics.DEAD_LETTERS.inc()
