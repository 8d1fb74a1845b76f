"""The verification client (验真): one aiohttp session per process, a cap on calls in flight, a timeout each.

Retries, the circuit breaker, the QPS cap and the cache come with the workers issue; here one answer is final.
"""

from __future__ import annotations

import asyncio
import decimal
from typing import Literal

import aiohttp
import msgspec

from gateway.model import Queued

Outcome = Literal["found", "not_found", "error"]


class Verified(msgspec.Struct, frozen=True):
    amount_fen: int
    issue_date: str
    status: str


class Verification(msgspec.Struct, frozen=True):
    outcome: Outcome
    invoice: Verified | None = None
    detail: str = ""


class _Answer(msgspec.Struct):
    found: bool
    invoice: dict[str, str] | None = None


class Verifier:
    def __init__(self, session: aiohttp.ClientSession, base_url: str, concurrency: int, timeout_ms: int) -> None:
        self._session = session
        self._url = base_url.rstrip("/") + "/verify"
        self._slots = asyncio.Semaphore(concurrency)
        self._timeout = aiohttp.ClientTimeout(total=timeout_ms / 1000)

    async def verify(self, q: Queued) -> Verification:
        """Ask the tax service about one invoice; any failure is an ``error`` outcome, never an exception."""
        asked = {
            "number": q.number,
            "code": q.code,
            "issue_date": q.issue_date,
            "amount": f"{decimal.Decimal(q.amount_fen) / 100:.2f}",
            "check_code": q.check_code,
        }
        async with self._slots:
            try:
                async with self._session.post(self._url, json=asked, timeout=self._timeout) as resp:
                    body = await resp.read()
                    status = resp.status
            except (aiohttp.ClientError, TimeoutError) as exc:
                return Verification("error", detail=type(exc).__name__)
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
