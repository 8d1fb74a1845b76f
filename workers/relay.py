"""The outbox relay (``gateway-worker export``): delivers one destination's records (core/outbox.py) at least
once, in the order of their ids (so in order per invoice), in batches, each record with an idempotency id (the
destination's adapter makes it: workers/national.py), each request signed as a channel signs its own
(core/signing.py), with the relay's own key, ``GATEWAY_EXPORT_SECRET``.

A request that fails (a timeout, a broken connection, a 5xx, an answer it cannot read) is sent again after a
backoff, exponential with jitter up to ``GATEWAY_EXPORT_BACKOFF_MAX_S``; a ``Retry-After`` (429, 503) is
honoured as the least wait. A breaker opens when ``GATEWAY_EXPORT_BREAKER_FAILURES`` of the last 20 requests
failed; after ``GATEWAY_EXPORT_BREAKER_COOLDOWN_S`` one request decides. At most ``GATEWAY_EXPORT_QPS``
requests a second. A record the destination refuses as invalid (or a request it refuses whole: a 4xx but 401, 403, 404,
408 and 429) is parked
with the reason it gave; records of the same subject not sent yet wait behind it, parked too (``parked_after``),
so that order per invoice holds. ``gateway-worker outbox parked`` lists them, ``gateway-worker outbox resend``
sends them again. Nothing is dropped.

One relay per destination at a time (a session advisory lock, core/locks.py): another process started beside
it waits as a standby and takes over when the first stops.
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
import time
import urllib.parse
from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol

import aiohttp
import asyncpg
import msgspec
import orjson

from core import locks
from core import settings as config
from core.outbox import NATIONAL
from core.signing import sign_headers
from workers import metrics, national
from workers.national import Result, Row
from workers.verify import Breaker

log = logging.getLogger(__name__)
STANDBY_POLL_S = 5.0  # how often a standby relay tries the destination's lock

PENDING = """
SELECT o.id, o.subject, o.kind, o.record,
       (SELECT p.id FROM outbox p WHERE p.subject = o.subject AND p.destination = o.destination
          AND p.delivered_at IS NULL AND p.parked_at IS NOT NULL AND p.id < o.id ORDER BY p.id LIMIT 1) AS behind
FROM outbox o WHERE o.destination = $1 AND o.delivered_at IS NULL AND o.parked_at IS NULL
ORDER BY o.id LIMIT $2
"""
DELIVERED = """
UPDATE outbox SET delivered_at = now(), attempts = attempts + 1 WHERE id = ANY($1::bigint[])
RETURNING extract(epoch FROM delivered_at - created_at) AS took_s
"""
PARK = """
UPDATE outbox SET parked_at = now(), parked_reason = p.reason, parked_after = p.after, attempts = attempts + 1
FROM unnest($1::bigint[], $2::text[], $3::bigint[]) AS p(id, reason, after) WHERE outbox.id = p.id
"""


class Adapter(Protocol):
    """A destination's wire format (workers/national.py is one)."""

    PATH: str

    def records(self, row: Row, campaign: str) -> list[dict[str, Any]]: ...
    def request_body(self, sender: str, campaign: str, batch: Sequence[dict[str, Any]]) -> bytes: ...
    def results(self, answer: bytes, sent: Sequence[str]) -> dict[str, Result]: ...


class Outcome(NamedTuple):
    """What one request came to: the rows delivered, the rows parked (id -> reason), whether it failed, and
    the least wait the destination asked for."""

    delivered: list[int]
    parked: dict[int, str]
    failed: bool
    retry_after_s: float


class Relay:
    def __init__(
        self,
        pool: asyncpg.Pool,
        session: aiohttp.ClientSession,
        export: config.Export,
        campaign: str,
        destination: str = NATIONAL,
        adapter: Adapter = national,
        *,
        url: str | None = None,
        secret: str | None = None,
    ) -> None:
        """``url`` and ``secret``: where to send and what to sign with, when not the national platform's
        (``GATEWAY_EXPORT_URL`` and ``GATEWAY_EXPORT_SECRET``): a channel's webhook URL and its own secret."""
        self.pool, self.session, self.export = pool, session, export
        self.campaign, self.destination, self.adapter = campaign, destination, adapter
        self.url = url if url is not None else export.url.rstrip("/") + adapter.PATH
        self.secret = secret if secret is not None else export.secret
        self.breaker = Breaker(
            export.breaker_failures, export.breaker_cooldown_s, metrics.EXPORT_BREAKER_OPEN.labels(destination)
        )
        self.failures = 0  # consecutive failed requests: the backoff's exponent
        self.next_start = 0.0  # monotonic time before which no request starts (the rate cap)

    async def run(self, stopping: asyncio.Event) -> None:
        """Deliver until ``stopping`` is set, holding the destination's lock (waiting for it as a standby)."""
        async with self.pool.acquire() as conn:
            lock = (locks.EXPORT, self.destination)
            while not await conn.fetchval("SELECT pg_try_advisory_lock($1, hashtext($2))", *lock):
                if await _stopped(stopping, STANDBY_POLL_S):
                    return
            log.info("relay to %s: delivering", self.destination)
            try:
                while not stopping.is_set():
                    try:
                        wait_s = await self.step()
                    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                        log.warning("relay to %s: the outbox cannot be read now: %s", self.destination, exc)
                        wait_s = 1.0
                    if wait_s > 0:
                        await _stopped(stopping, wait_s)
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1, hashtext($2))", *lock)

    async def step(self) -> float:
        """Send one batch if one is pending and the breaker and the rate cap allow; returns how long to wait
        before the next step (0: at once)."""
        rows = await self._pending()
        if not rows:
            return self.export.poll_ms / 1000
        if (wait_s := self.next_start - time.monotonic()) > 0:
            return wait_s
        if not self.breaker.allow():
            return max(0.05, self.breaker.open_until - time.monotonic())
        self.next_start = time.monotonic() + 1 / self.export.qps
        outcome = await self._send(rows)
        await self._settle(rows, outcome)
        if not outcome.failed:
            self.failures = 0
            return outcome.retry_after_s
        self.failures += 1
        backoff: float = min(self.export.backoff_max_s, 0.25 * 2 ** (self.failures - 1)) * (0.5 + random.random())
        return max(backoff, outcome.retry_after_s)

    async def _pending(self) -> list[Row]:
        """The next batch's rows; those behind a parked record of their subject are parked behind it."""
        found = await self.pool.fetch(PENDING, self.destination, self.export.batch)
        behind = {r["id"]: r["behind"] for r in found if r["behind"] is not None}
        if behind:
            reasons = [f"waits behind parked record {after} of the same subject" for after in behind.values()]
            await self.pool.execute(PARK, list(behind), reasons, list(behind.values()))
            metrics.EXPORT_RECORDS.labels(self.destination, "parked").inc(len(behind))
        return [
            Row(r["id"], r["subject"], r["kind"], orjson.loads(r["record"])) for r in found if r["id"] not in behind
        ]

    async def _send(self, rows: list[Row]) -> Outcome:
        ids: dict[int, list[str]] = {}
        batch: list[dict[str, Any]] = []
        unmapped: dict[int, str] = {}
        for row in rows:
            try:
                made = self.adapter.records(row, self.campaign)
            except (KeyError, ValueError, TypeError) as exc:  # a record the adapter cannot map: parked, not lost
                unmapped[row.id] = f"the adapter cannot map it: {type(exc).__name__}: {exc}"
                continue
            ids[row.id] = [r["id"] for r in made]
            batch += made
        if not batch:
            self.breaker.trying = False  # nothing was sent: a half-open breaker's try is not spent
            return Outcome([], unmapped, False, 0.0)
        outcome = await self._post(batch, ids)
        return outcome._replace(parked={**outcome.parked, **unmapped})

    async def _post(self, batch: list[dict[str, Any]], ids: dict[int, list[str]]) -> Outcome:
        body = self.adapter.request_body(self.export.client_id, self.campaign, batch)
        path = _path_and_query(self.url)
        headers = sign_headers(
            self.export.client_id, self.secret, "POST", path, body, int(time.time()), secrets.token_hex(16)
        )
        timeout = aiohttp.ClientTimeout(total=self.export.timeout_ms / 1000)
        try:
            async with self.session.post(
                self.url, data=body, headers={**headers, "Content-Type": "application/json"}, timeout=timeout
            ) as resp:
                status, answer, retry_after = resp.status, await resp.read(), resp.headers.get("Retry-After")
        except (aiohttp.ClientError, TimeoutError) as exc:
            metrics.EXPORT_REQUESTS.labels(self.destination, "error").inc()
            self.breaker.record(False)
            log.warning("relay to %s: request failed: %s", self.destination, type(exc).__name__)
            return Outcome([], {}, True, 0.0)
        metrics.EXPORT_REQUESTS.labels(self.destination, str(status)).inc()
        return self._read(status, answer, _seconds(retry_after), ids)

    def _read(self, status: int, answer: bytes, retry_after_s: float, ids: dict[int, list[str]]) -> Outcome:
        if status == 429:  # the destination is up and asks us to slow down: not a failure of it
            self.breaker.record(True)
            return Outcome([], {}, False, max(retry_after_s, 1 / self.export.qps))
        if 400 <= status < 500 and status not in (401, 403, 404, 408):
            self.breaker.record(True)
            reason = f"the destination refused the request (HTTP {status}): {answer[:300].decode(errors='replace')}"
            return Outcome([], dict.fromkeys(ids, reason), False, 0.0)
        if 200 <= status < 300:
            try:
                verdicts = self.adapter.results(answer, [i for sent in ids.values() for i in sent])
                outcome = _verdicts(ids, verdicts)
            except (msgspec.DecodeError, KeyError) as exc:
                log.warning("relay to %s: unreadable answer: %s", self.destination, exc)
            else:
                self.breaker.record(True)
                return outcome
        elif status in (401, 403):
            log.error("relay to %s: refused our signature (%d): check GATEWAY_EXPORT_SECRET", self.destination, status)
        self.breaker.record(False)
        return Outcome([], {}, True, retry_after_s)

    async def _settle(self, rows: list[Row], outcome: Outcome) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            if outcome.delivered:
                for r in await conn.fetch(DELIVERED, outcome.delivered):
                    metrics.EXPORT_DELIVERY_SECONDS.labels(self.destination).observe(float(r["took_s"]))
                metrics.EXPORT_RECORDS.labels(self.destination, "delivered").inc(len(outcome.delivered))
            if outcome.parked:
                parked = list(outcome.parked)
                await conn.execute(PARK, parked, [outcome.parked[i] for i in parked], [None] * len(parked))
                metrics.EXPORT_RECORDS.labels(self.destination, "parked").inc(len(parked))
                log.warning("relay to %s: %d records parked: %s", self.destination, len(parked), outcome.parked)
            if outcome.failed:
                tried = [r.id for r in rows if r.id not in outcome.parked]
                await conn.execute("UPDATE outbox SET attempts = attempts + 1 WHERE id = ANY($1::bigint[])", tried)


def _verdicts(ids: dict[int, list[str]], verdicts: dict[str, Result]) -> Outcome:
    """Per outbox row: delivered when each of its records was accepted (or held already), else parked with
    the first refusal's reason. A record the answer leaves out raises KeyError: the request failed."""
    delivered, parked = [], {}
    for row_id, record_ids in ids.items():
        refused = [verdicts[i] for i in record_ids if verdicts[i].status == "invalid"]
        if refused:
            parked[row_id] = f"invalid: {refused[0].reason or 'no reason given'} (record {refused[0].id})"
        else:
            delivered.append(row_id)
    return Outcome(delivered, parked, False, 0.0)


def _path_and_query(url: str) -> str:
    """What the request signs as its path: the URL's path with its raw query, as the destination receives it."""
    parts = urllib.parse.urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def _seconds(retry_after: str | None) -> float:
    """A ``Retry-After`` in seconds (its date form is not used by the platforms we know: 0)."""
    try:
        return max(0.0, float(retry_after)) if retry_after else 0.0
    except ValueError:
        return 0.0


async def _stopped(stopping: asyncio.Event, wait_s: float) -> bool:
    """Wait up to ``wait_s``; whether ``stopping`` was set meanwhile."""
    try:
        await asyncio.wait_for(stopping.wait(), wait_s)
    except TimeoutError:
        return False
    return True
