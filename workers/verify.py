"""The verification client (验真): one aiohttp session per process, a cap on calls in flight and per second,
a timeout and a few attempts per call (exponential backoff with jitter on 5xx, 429 and timeouts), and a
circuit breaker. An answer is one of: found, not found, error (the call failed after its attempts), or
unavailable (the breaker is open: nothing was asked, the invoice waits without spending a try)."""

from __future__ import annotations

import asyncio
import decimal
import random
import time
from collections import deque
from typing import Literal

import aiohttp
import msgspec

from gateway.model import Queued
from workers import metrics

Outcome = Literal["found", "not_found", "error", "unavailable"]


class Verified(msgspec.Struct, frozen=True):
    amount_fen: int
    issue_date: str
    status: str


class Verification(msgspec.Struct, frozen=True):
    outcome: Outcome
    invoice: Verified | None = None
    detail: str = ""
    answered: bool = True  # false when the service did not answer at all (refused, timed out)


class _Answer(msgspec.Struct):
    found: bool
    invoice: dict[str, str] | None = None


class Breaker:
    """Opens when ``failures`` of the last ``WINDOW`` calls failed, for ``cooldown_s``; then one call decides
    (half-open). A share of recent calls, not a streak: one invoice the service always fails on (the
    sandbox's 995) must not stop verification for everyone."""

    WINDOW = 20

    def __init__(self, failures: int, cooldown_s: float) -> None:
        self.failures = failures
        self.cooldown_s = cooldown_s
        self.recent: deque[bool] = deque(maxlen=self.WINDOW)
        self.open_until = 0.0
        self.is_open = False
        self.trying = False

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
            else:
                self.open_until = time.monotonic() + self.cooldown_s
        else:
            self.recent.append(ok)
            if sum(1 for r in self.recent if not r) >= self.failures:
                self.is_open = True
                self.open_until = time.monotonic() + self.cooldown_s
        metrics.BREAKER_OPEN.set(1 if self.is_open else 0)


class Pace:
    """At most ``qps`` calls started per second (0: no cap): the tax service allows a fixed rate."""

    def __init__(self, qps: float) -> None:
        self.interval = 1 / qps if qps > 0 else 0.0
        self.next_at = 0.0

    async def wait(self) -> None:
        if not self.interval:
            return
        now = time.monotonic()
        at = max(now, self.next_at)
        self.next_at = at + self.interval
        if at > now:
            await asyncio.sleep(at - now)


class Verifier:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        *,
        concurrency: int,
        timeout_ms: int,
        attempts: int = 3,
        breaker: Breaker | None = None,
        qps: float = 0.0,
    ) -> None:
        self._session = session
        self._url = base_url.rstrip("/") + "/verify"
        self._slots = asyncio.Semaphore(concurrency)
        self._timeout = aiohttp.ClientTimeout(total=timeout_ms / 1000)
        self._attempts = max(1, attempts)
        self._breaker = breaker or Breaker(5, 5.0)
        self._pace = Pace(qps)

    async def verify(self, q: Queued) -> Verification:
        """Ask the tax service about one invoice; never raises."""
        asked = {
            "number": q.number,
            "code": q.code,
            "issue_date": q.issue_date,
            "amount": f"{decimal.Decimal(q.amount_fen) / 100:.2f}",
            "check_code": q.check_code,
        }
        if not self._breaker.allow():
            return Verification("unavailable", detail="circuit breaker open")
        answer = Verification("error", detail="no attempt")
        for attempt in range(self._attempts):
            if attempt:
                await asyncio.sleep(0.05 * 2 ** (attempt - 1) * (0.5 + random.random()))
            async with self._slots:
                await self._pace.wait()
                answer = await self._call(asked)
            if answer.outcome != "error":
                break
        # One outcome per invoice, not per attempt: an invoice the service always fails on counts once.
        self._breaker.record(answer.outcome != "error")
        if answer.outcome == "error" and not answer.answered and self._breaker.is_open:
            # The service is down, not this invoice: it waits without spending a try. (An HTTP error is an
            # answer about this invoice: it spends one, so an invoice the service always fails on ends.)
            return Verification("unavailable", detail=f"circuit breaker open after: {answer.detail}")
        return answer

    async def _call(self, asked: dict[str, str]) -> Verification:
        started = time.perf_counter()
        try:
            async with self._session.post(self._url, json=asked, timeout=self._timeout) as resp:
                body = await resp.read()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            return Verification("error", detail=type(exc).__name__, answered=False)
        finally:
            metrics.VERIFY_SECONDS.observe(time.perf_counter() - started)
        metrics.VERIFY_CALLS.labels(str(status)).inc()
        if status == 404:
            return Verification("not_found")
        if status != 200:
            return Verification("error", detail=f"HTTP {status}")
        try:
            answer = msgspec.json.decode(body, type=_Answer)
            inv = answer.invoice or {}
            verified = Verified(int(decimal.Decimal(inv["amount"]) * 100), inv["issue_date"], inv["status"])
        except (msgspec.DecodeError, KeyError, decimal.InvalidOperation) as exc:
            return Verification("error", detail=f"unreadable answer: {type(exc).__name__}")
        return Verification("found", verified)
