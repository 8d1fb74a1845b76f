"""The verification client (验真): keep-alive connections to the service (workers/http1.py), a cap on calls in
flight, a pace of calls per second shared by all worker processes (in Redis), a timeout and a few attempts per
call (exponential backoff with jitter on 5xx, 429 and timeouts), and a circuit breaker. An answer is one of:
found, not found, error (the call failed after its attempts), or unavailable (nothing was learnt: the breaker
is open, the service answered 429, or Redis gave no pace slot; the invoice waits without spending a try, so a
throttled service never disqualifies an invoice). tests/integration/test_tax_service.py runs two workers
against a simulator limited to 10 calls/s: it refused none, took at most 10 in any second, and saw each invoice
once, even when the same entries were delivered again.

The verified facts keep no personal data: the buyer's name becomes a keyed hash as soon as it arrives, the
same hash the gateway made of the uploaded name, so the two can be compared and the facts cached."""

from __future__ import annotations

import asyncio
import decimal
import functools
import math
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal, TypeVar

import msgspec

from core import keys, lua
from core.contract import Queued
from core.errors import STORE_ERRORS
from core.metrics import keep
from core.stores import RedisClient
from workers import metrics
from workers.http1 import HttpError, Origin

T = TypeVar("T")
R = TypeVar("R")

Outcome = Literal["found", "not_found", "error", "unavailable"]


class Verified(msgspec.Struct, frozen=True):
    """What the tax system holds about an invoice. A field the service left out is None: the uploaded value
    stands for it (the sandbox's simulator knows only what the request carried, unless an invoice was
    registered with it)."""

    amount_fen: int
    issue_date: str
    status: str  # "normal" or "reversed"
    seller_tax_id: str | None = None
    buyer_ref: str | None = None  # keyed hash of the buyer's name, never the name
    buyer_kind: str = "person"  # or "organisation"
    kind: str = "normal"  # or "on_behalf" (代开), "fixed_amount" (定额), "purchase" (收购)
    category: str | None = None


class Verification(msgspec.Struct, frozen=True):
    outcome: Outcome
    invoice: Verified | None = None
    detail: str = ""
    answered: bool = True  # false when the service did not answer at all (refused, timed out)


class _Invoice(msgspec.Struct):
    amount: str
    issue_date: str
    status: str = "normal"
    seller_tax_id: str | None = None
    buyer_name: str | None = None
    buyer_kind: str = "person"
    kind: str = "normal"
    category: str | None = None


class _Answer(msgspec.Struct):
    found: bool
    invoice: _Invoice | None = None


class Breaker:
    """Opens when ``failures`` of the last ``WINDOW`` calls failed, for ``cooldown_s``; then one call decides
    (half-open). A share of recent calls, not a streak: one invoice the service always fails on (the
    sandbox's 995) must not stop verification for everyone."""

    WINDOW = 20

    def __init__(self, failures: int, cooldown_s: float, gauge: Any = None) -> None:
        self.failures = failures
        self.cooldown_s = cooldown_s
        self.gauge = metrics.BREAKER_OPEN if gauge is None else gauge  # 1 while open (the relay has its own)
        self.recent: deque[bool] = deque(maxlen=self.WINDOW)
        self.failed = 0  # the failures among ``recent``
        self.open_until = 0.0
        self.is_open = False
        self.trying = False
        self.shown: bool | None = None  # what the gauge says: it is written when that changes, not every call

    def allow(self) -> bool:
        if not self.is_open:
            return True
        if time.monotonic() < self.open_until or self.trying:
            return False
        self.trying = True  # half-open: one call decides
        return True

    def record(self, ok: bool) -> None:
        if self.trying:
            self.trying = False
            self.is_open = not ok
            if ok:
                self.recent.clear()
                self.failed = 0
            else:
                self.open_until = time.monotonic() + self.cooldown_s
        else:
            if len(self.recent) == self.WINDOW and not self.recent[0]:
                self.failed -= 1  # the oldest, about to drop out, was a failure
            self.recent.append(ok)
            self.failed += not ok
            if self.failed >= self.failures:
                self.is_open = True
                self.open_until = time.monotonic() + self.cooldown_s
        if self.shown is not self.is_open:
            self.gauge.set(1 if self.is_open else 0)
            self.shown = self.is_open


class Pace:
    """At most ``qps`` calls started per second by all worker processes together (0: no cap): the tax
    service allows a fixed rate. Slots are reserved in Redis (``pace.lua``) a few at a time, about 50 ms
    worth, so a call costs no round trip of its own; a slot whose time passed unused is dropped, never
    spent late, so the rate holds however the workers interleave."""

    HEADROOM = 1.05  # slots 5% further apart than 1/qps: network jitter must not bunch calls past the rate

    def __init__(self, redis: RedisClient | None, qps: float) -> None:
        self.interval = self.HEADROOM / qps if qps > 0 else 0.0
        self.chunk = max(1, math.ceil(qps * 0.05))
        self.slots: deque[float] = deque()  # start times (monotonic) reserved for this process
        self.lock = asyncio.Lock()
        self._reserve = redis.register_script(lua.load("workers", "pace.lua")) if redis is not None else None
        self._next_local = 0.0

    async def wait(self) -> None:
        if not self.interval:
            return
        late = self.interval / 4
        while True:
            async with self.lock:
                while self.slots and self.slots[0] < time.monotonic() - late:
                    self.slots.popleft()
                while not self.slots:
                    await self._refill()
                at = self.slots.popleft()
            if at > time.monotonic():
                await asyncio.sleep(at - time.monotonic())
            if time.monotonic() - at <= late:
                return
            # Woken too late (a busy loop): calling now could crowd the next process's slots. Take another.

    async def _refill(self) -> None:
        if self._reserve is None:  # one process alone (unit tests): its own clock
            at = max(time.monotonic(), self._next_local)
            self._next_local = at + self.interval
            self.slots.append(at)
            return
        asked = time.monotonic()
        wait_us = int(await self._reserve(keys=[keys.VERIFY_PACE], args=[round(self.interval * 1e6), self.chunk]))
        answered = time.monotonic()
        if answered - asked > self.interval / 4:
            return  # the reply took too long to place the slots in time: they are lost, never spent late
        self.slots.extend(answered + wait_us / 1e6 + i * self.interval for i in range(self.chunk))


async def in_turn(tasks: int, items: Sequence[T], call: Callable[[T], Awaitable[R]]) -> list[R]:
    """``call`` of each item, the answers in the items' order: ``tasks`` tasks take the items in turn, rather
    than a task each. A task each for a batch of 5,000 invoices made the event loop run 5,000 first steps in one
    turn: on a quiet machine 27 µs of CPU an invoice against 16 and the loop held 51 ms against 2
    (benchmarks/verify_fanout.py); in a burst, a stream read waiting behind such turns timed out."""
    answers: list[R | None] = [None] * len(items)
    turns = iter(range(len(items)))  # shared: each index is taken by one task

    async def take() -> None:
        for i in turns:
            answers[i] = await call(items[i])

    await asyncio.gather(*(take() for _ in range(min(tasks, len(items)))))
    return answers  # type: ignore[return-value]  # every index was answered


class Verifier:
    def __init__(
        self,
        origin: Origin,
        *,
        concurrency: int,
        attempts: int = 3,
        breaker: Breaker | None = None,
        name_ref: Callable[[str], str],
        pace: Pace | None = None,
    ) -> None:
        self._origin = origin
        self._concurrency = concurrency
        self._slots = asyncio.Semaphore(concurrency)
        self._attempts = max(1, attempts)
        self._breaker = breaker or Breaker(5, 5.0)
        self._pace = pace or Pace(None, 0.0)
        self._name_ref = name_ref

    async def each(self, items: Sequence[T], ask: Callable[[T], Awaitable[R]]) -> list[R]:
        """``ask`` (which calls this verifier) of each item, the answers in the items' order, by twice as many tasks
        as calls may be in flight (``in_turn``): a call's backoff before it tries again holds no slot, so another
        task's call can take it."""
        return await in_turn(2 * self._concurrency, items, ask)

    async def verify(self, q: Queued) -> Verification:
        """Ask the tax service about one invoice; never raises."""
        return await self.ask(q.number, q.code, q.issue_date, q.amount_fen, q.check_code)

    async def ask(self, number: str, code: str, issue_date: str, amount_fen: int, check_code: str) -> Verification:
        """Ask the tax service about the invoice these inputs name (no cache: the caller's choice); never raises."""
        asked = {
            "number": number,
            "code": code,
            "issue_date": issue_date,
            "amount": f"{decimal.Decimal(amount_fen) / 100:.2f}",
            "check_code": check_code,
        }
        if not self._breaker.allow():
            return Verification("unavailable", detail="circuit breaker open")
        answer = Verification("error", detail="no attempt")
        for attempt in range(self._attempts):
            if attempt:
                await asyncio.sleep(0.05 * 2 ** (attempt - 1) * (0.5 + random.random()))
            async with self._slots:
                try:
                    await self._pace.wait()
                except STORE_ERRORS as exc:  # no slot, no call: the invoice waits, spending no try
                    return Verification("unavailable", detail=f"no pace slot: {type(exc).__name__}")
                answer = await self._call(asked)
            if answer.outcome != "error":
                break
        if answer.detail == "HTTP 429":
            # The service refused to answer at this rate: nothing was learnt about the invoice, which waits
            # without spending a try (a throttled service must never disqualify consumers' invoices).
            return Verification("unavailable", detail="rate limited by the tax service")
        # One outcome per invoice, not per attempt: an invoice the service always fails on counts once.
        self._breaker.record(answer.outcome != "error")
        if answer.outcome == "error" and not answer.answered and self._breaker.is_open:
            # The service is down, not this invoice: it waits without spending a try. (An HTTP error is an
            # answer about this invoice: it spends one, so an invoice the service always fails on ends.)
            return Verification("unavailable", detail=f"circuit breaker open after: {answer.detail}")
        return answer

    async def red_letter(self, number: str, code: str, red_number: str) -> Outcome:
        """Whether the tax service holds the red-letter invoice ``red_number`` cancelling this invoice (its
        ``POST /red-letter``): found, not_found, or error (no answer: asked again later); unavailable when the
        breaker is open. Never raises."""
        if not self._breaker.allow():
            return "unavailable"
        asked = msgspec.json.encode({"number": number, "code": code, "red_number": red_number})
        async with self._slots:
            try:
                await self._pace.wait()
                status, _ = await self._origin.post("/red-letter", asked)
            except (HttpError, TimeoutError):
                status = 0
            except STORE_ERRORS:  # no pace slot: no call
                return "unavailable"
        self._breaker.record(status in (200, 404))
        if status == 200:
            return "found"
        return "not_found" if status == 404 else "error"

    async def _call(self, asked: dict[str, str]) -> Verification:
        started = time.perf_counter()
        try:
            status, body = await self._origin.post("/verify", msgspec.json.encode(asked))
        except (HttpError, TimeoutError) as exc:
            return Verification("error", detail=type(exc).__name__, answered=False)
        finally:
            _call_seconds().observe(time.perf_counter() - started)
        _calls(status).inc()
        if status == 404:
            return Verification("not_found")
        if status != 200:
            return Verification("error", detail=f"HTTP {status}")
        try:
            inv = msgspec.json.decode(body, type=_Answer).invoice
            if inv is None:
                raise KeyError("invoice")
            verified = Verified(
                amount_fen=int(decimal.Decimal(inv.amount) * 100),
                issue_date=inv.issue_date,
                status=inv.status,
                seller_tax_id=inv.seller_tax_id,
                buyer_ref=None if inv.buyer_name is None else self._name_ref(inv.buyer_name),
                buyer_kind=inv.buyer_kind,
                kind=inv.kind,
                category=inv.category,
            )
        except (msgspec.DecodeError, KeyError, decimal.InvalidOperation) as exc:
            return Verification("error", detail=f"unreadable answer: {type(exc).__name__}")
        return Verification("found", verified)


class _Cached(Verified, array_like=True, omit_defaults=True, frozen=True):
    """A verified answer as the cache keeps it: its fields in order without their names, trailing defaults left
    out (about half the bytes of a map)."""


# Keys a call of cache_put.lua at most: a script holds Redis while it runs (Redis spends 7 µs a key on it here,
# benchmarks/cache_put_cost.py), and the gateway's calls wait behind it: 200 keys hold it about 1.5 ms.
PUT_CHUNK = 200


class Cache:
    """Verified answers in Redis, one key per invoice under its shard's hash tag, kept ``ttl_s`` or until the
    invoice is committed (they go with its in-flight claim: dedup/inflight.py's Releaser): an invoice is
    verified once, whatever redeliveries, crashes or re-checks follow (a batch delivered after its commit is
    found in ``invoice_keys`` instead: workers/sink.py's ``committed``). Read and written once per batch.

    Its keys (``keys.verified``) were named ``:verified:`` and held a msgpack map before: workers of the two
    formats never read each other's answers, so during a rolling upgrade an invoice redelivered from one to the
    other is verified again (a call more, nothing else); the old keys expire with their TTL."""

    _encode = msgspec.msgpack.Encoder().encode
    _decode = msgspec.msgpack.Decoder(_Cached).decode

    def __init__(self, redis: RedisClient, ttl_s: int) -> None:
        self.redis = redis
        self.ttl_s = ttl_s
        self._put = redis.register_script(lua.load("workers", "cache_put.lua"))

    async def get(self, invoices: list[tuple[int, str]]) -> dict[str, Verified]:
        """The cached answers among ``invoices`` (shard, key), by key."""
        if not invoices or self.ttl_s <= 0:
            return {}
        by_shard: dict[int, list[str]] = {}
        for shard, key in invoices:
            by_shard.setdefault(shard, []).append(key)
        async with self.redis.pipeline(transaction=False) as pipe:
            for shard, shard_keys in by_shard.items():  # one MGET per shard: its keys share a hash tag
                # The command rather than redis-py's mget, which a cluster pipeline refuses (keys of one slot
                # are fine).
                pipe.execute_command("MGET", *(keys.verified(shard, key) for key in shard_keys))
            replies: list[Any] = await pipe.execute()
        return {
            key: Verified(*msgspec.structs.astuple(self._decode(raw)))
            for shard_keys, found in zip(by_shard.values(), replies, strict=True)
            for key, raw in zip(shard_keys, found, strict=True)
            if raw is not None
        }

    async def put(self, answers: list[tuple[int, str, Verified]]) -> None:
        """Keep ``answers`` (shard, key, answer): one script call per shard and ``PUT_CHUNK`` keys (their keys share
        the shard's hash tag), all in one round trip."""
        if not answers or self.ttl_s <= 0:
            return
        by_shard: dict[int, tuple[list[str], list[bytes]]] = {}
        for shard, key, verified in answers:
            shard_keys, values = by_shard.setdefault(shard, ([], []))
            shard_keys.append(keys.verified(shard, key))
            values.append(self._encode(_Cached(*msgspec.structs.astuple(verified))))
        calls = [
            (shard_keys[i : i + PUT_CHUNK], [self.ttl_s, *values[i : i + PUT_CHUNK]])
            for shard_keys, values in by_shard.values()
            for i in range(0, len(shard_keys), PUT_CHUNK)
        ]
        await lua.call_each(self.redis, self._put, calls)


# A call's two metric updates, each kept in the process and written each second (core/metrics.py ``keep``; the
# worker's wiring flushes): written through at once, ``labels``, ``inc``, ``observe`` and their mmap writes were 25
# of 452 py-spy samples of a worker with the simulator (at cc81c2c); worker_bench.py could not tell the saving from
# its noise (benchmarks/README.md, "The verification client").
@functools.cache
def _call_seconds() -> Any:
    return keep(metrics.VERIFY_SECONDS)


@functools.lru_cache(maxsize=64)
def _calls(status: int) -> Any:
    return keep(metrics.VERIFY_CALLS.labels(str(status)))
