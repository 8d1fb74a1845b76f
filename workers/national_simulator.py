"""The national monitoring platform (全国有奖发票数据监测平台), simulated for the dev stack and the tests. Its real
interface is not public: this one speaks the format of docs/national-export.md (workers/national.py).

``POST /v1/records`` checks the request's signature (the client id and key it was started with, as the gateway
checks a channel's: time window, fresh nonce, HMAC), then answers each record: ``accepted``, ``duplicate``
(its idempotency id is held already: it is not stored twice) or ``invalid`` with a reason (a field its type
needs is missing or wrong; in the sandbox, too, an invoice whose key ends in ``994``, as the tax simulator
answers by ending).

What can go wrong, as a real platform's would: log-normal latency (median, 99th percentile); a share of
requests answered 500 (``error_rate``), half of them after the records were stored, so the answer is lost and
the sender must send again; 429 with ``Retry-After`` past ``qps`` requests a second; an outage
(``POST /sandbox/control {"outage_s": 30}``) answers 503 with ``Retry-After`` until it ends.

``GET /sandbox/received[?limit=N]``: what it holds (counts by type, the requests it saw by answer, the digest of
the records in arrival order, and the records, the last N). It keeps each record's id as a digest and its JSON
text in compressed blocks (``Held``), and the digest and counts as it goes: holding the records as objects took
4.3 GiB in a 10 M burst stopped at 1.8 M invoices fed, and as a text each 412 B a record
(benchmarks/national_memory.py).
``POST /sandbox/control``: change ``error_rate``, ``qps``, ``median_ms``, ``p99_ms``; start an outage
(``outage_s``); ``"clear": true`` forgets everything. It answers the settings.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import math
import random
import re
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from typing import Any

import msgspec
from aiohttp import web

from core.signing import canonical_string, signature_matches
from workers.national import FORMAT, PATH
from workers.simulator import Latency, Window

CLOCK_SKEW_S = 300
NONCE_TTL_S = 600
DIGITS = re.compile(r"[0-9]{1,32}")
HEX64 = re.compile(r"[0-9a-f]{64}")
DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
TYPES = ("received", "verified", "ineligible", "reversed", "eligible")
PRIZE_MOVEMENTS = ("awarded", "withdrawn", "paid", "clawback", "expired")


class Control(msgspec.Struct, forbid_unknown_fields=True):
    """The simulator's behaviour, changed at run time by ``POST /sandbox/control``."""

    error_rate: float = 0.0
    qps: float = 0.0
    median_ms: float = 10.0
    p99_ms: float = 80.0
    outage_s: float = 0.0  # in a request: start an outage this long; in the answer: what is left of it
    clear: bool = False


class Held:
    """The records held, in arrival order: each id as a 16-byte digest (to answer ``duplicate``), each text in
    blocks of ``BLOCK`` compressed together (JSON text holds no raw newline, so a block is its texts a line each)."""

    BLOCK = 1024
    ids: set[bytes]
    blocks: list[bytes]
    open: list[bytes]

    def __init__(self) -> None:
        self.clear()

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, rid: str) -> bool:
        return _id(rid) in self.ids

    def add(self, rid: str, text: bytes) -> None:
        self.ids.add(_id(rid))
        self.open.append(text)
        if len(self.open) >= self.BLOCK:
            self.blocks.append(zlib.compress(b"\n".join(self.open), 1))
            self.open = []

    def newest(self) -> Iterator[bytes]:
        """The texts, newest first."""
        yield from reversed(self.open)
        for block in reversed(self.blocks):
            yield from reversed(zlib.decompress(block).split(b"\n"))

    def clear(self) -> None:
        self.ids, self.blocks, self.open = set(), [], []


def _id(rid: str) -> bytes:
    return hashlib.blake2b(rid.encode(), digest_size=16).digest()


class Platform:
    """What the platform holds and how it behaves."""

    def __init__(self, client_id: str, secret: str, control: Control) -> None:
        self.client_id, self.secret = client_id, secret
        self.control = control
        self.latency = Latency(control.median_ms, control.p99_ms)
        self.window = Window(control.qps)
        self.outage_until = 0.0
        self.held = Held()
        self.by_type: Counter[str] = Counter()
        self.digest = hashlib.sha256()  # of the records' texts in arrival order, a line each
        self.requests: Counter[str] = Counter()
        self.outcomes: Counter[str] = Counter()
        self.nonces: dict[str, float] = {}

    def change(self, asked: Control) -> None:
        if asked.clear:
            self.held.clear()
            self.by_type.clear()
            self.digest = hashlib.sha256()
            self.requests.clear()
            self.outcomes.clear()
        self.control = msgspec.structs.replace(asked, outage_s=0.0, clear=False)
        self.latency = Latency(asked.median_ms, asked.p99_ms)
        self.window = Window(asked.qps)
        if asked.outage_s > 0:
            self.outage_until = time.monotonic() + asked.outage_s

    def settings(self) -> dict[str, Any]:
        left = max(0.0, self.outage_until - time.monotonic())
        found: dict[str, Any] = msgspec.to_builtins(msgspec.structs.replace(self.control, outage_s=round(left, 3)))
        return found

    def signed(self, request: web.Request, body: bytes) -> str | None:
        """None when the request is signed by the expected client, else why not."""
        h = request.headers
        ts, nonce, presented = h.get("X-Timestamp", ""), h.get("X-Nonce", ""), h.get("X-Signature", "")
        if h.get("X-Client-Id") != self.client_id or not ts.isdigit() or not nonce:
            return "unknown client or missing headers"
        if abs(int(ts) - time.time()) > CLOCK_SKEW_S:
            return "stale timestamp"
        now = time.monotonic()
        if self.nonces.get(nonce, 0.0) > now:
            return "replayed nonce"
        canonical = canonical_string(request.method, request.raw_path, ts, nonce, body)
        if not signature_matches(self.secret, canonical, presented):
            return "bad signature"
        if len(self.nonces) > 100_000:
            self.nonces = {n: t for n, t in self.nonces.items() if t > now}
        self.nonces[nonce] = now + NONCE_TTL_S
        return None

    def take(self, records: list[Any]) -> list[dict[str, Any]]:
        """Each record's verdict; the new valid ones are held."""
        results = []
        for record in records:
            problem = invalid(record)
            rid = str(record["id"]) if problem != "missing_id" else None
            if problem is not None or rid is None:
                status = "invalid"
            elif rid in self.held:
                status = "duplicate"
            else:
                status = "accepted"
                self.hold(rid, record)
            self.outcomes[status] += 1
            results.append({"id": rid, "status": status, **({"reason": problem} if problem else {})})
        return results

    def hold(self, rid: str, record: dict[str, Any]) -> None:
        """Keep a new record: its text, its type's count, the digest."""
        text = msgspec.json.encode(record)
        self.digest.update(b"\n" + text if self.held else text)
        self.held.add(rid, text)
        self.by_type[str(record.get("type"))] += 1

    def last(self, n: int) -> list[Any]:
        """The newest ``n`` records held, oldest first."""
        if n <= 0:
            return []
        texts = list(itertools.islice(self.held.newest(), n))
        return [msgspec.json.decode(t) for t in reversed(texts)]


def invalid(record: Any) -> str | None:
    """Why a record is refused, or None."""
    if not isinstance(record, dict) or not isinstance(record.get("id"), str) or not record["id"]:
        return "missing_id"
    kind = record.get("type")
    if not isinstance(record.get("at"), str):
        return "missing_at"
    if isinstance(kind, str) and kind.startswith("invoice."):
        return _invoice_problem(record, kind.removeprefix("invoice."))
    if kind == "batch.fed":
        batch = record.get("batch")
        if isinstance(batch, dict) and isinstance(batch.get("seq"), int) and HEX64.fullmatch(str(batch.get("sha256"))):
            return None
        return "bad_batch"
    if kind == "report.daily":
        good = isinstance(record.get("report"), dict)
        return None if good and DATE.fullmatch(str(record.get("date"))) else "bad_report"
    if isinstance(kind, str) and kind.startswith("prize."):
        return _prize_problem(record.get("prize"), kind.removeprefix("prize."))
    if kind == "draw.published":
        draw = record.get("draw")
        if isinstance(draw, dict) and isinstance(draw.get("draw_id"), str) and HEX64.fullmatch(str(draw.get("seed"))):
            return None
        return "bad_draw"
    return "unknown_type"


def _prize_problem(prize: Any, movement: str) -> str | None:
    if movement not in PRIZE_MOVEMENTS:
        return "unknown_type"
    if not isinstance(prize, dict) or not DIGITS.fullmatch(str(prize.get("key"))):
        return "bad_key"
    if not isinstance(prize.get("amount_fen"), int) or prize["amount_fen"] <= 0 or not prize.get("tier"):
        return "bad_prize"
    if movement in ("withdrawn", "clawback") and not prize.get("cause"):
        return "missing_reason"
    return None


def _invoice_problem(record: dict[str, Any], status: str) -> str | None:
    key = str(record.get("key"))
    if status not in TYPES:
        return "unknown_type"
    if not DIGITS.fullmatch(key) or not isinstance(record.get("channel"), str):
        return "bad_key"
    if key.endswith("994"):
        return "sandbox_refused_invoice"  # the sandbox's way to be refused (as 999 is the tax simulator's)
    if status == "received":
        facts = record.get("invoice")
        if not isinstance(facts, dict) or not HEX64.fullmatch(str(facts.get("person"))):
            return "bad_person"
        if not isinstance(facts.get("amount_fen"), int) or facts["amount_fen"] <= 0:
            return "bad_amount"
    if status in ("ineligible", "reversed") and not record.get("reason"):
        return "missing_reason"
    if status == "eligible" and not isinstance(record.get("batch_seq"), int):
        return "missing_batch_seq"
    return None


PLATFORM: web.AppKey[Platform] = web.AppKey("platform", Platform)


def create_app(client_id: str, secret: str, control: Control) -> web.Application:
    app = web.Application()
    app[PLATFORM] = Platform(client_id, secret, control)
    app.router.add_post(PATH, records)
    app.router.add_get("/sandbox/received", received)
    app.router.add_post("/sandbox/control", change)
    app.router.add_get("/sandbox/control", settings)
    app.router.add_get("/healthz", healthz)
    return app


async def records(request: web.Request) -> web.Response:
    platform = request.app[PLATFORM]
    body = await request.read()
    platform.requests["total"] += 1
    refused = _refusal(platform, request, body)
    if refused is not None:
        return refused
    delay = platform.latency.draw()
    if delay:
        await asyncio.sleep(delay)
    try:
        asked = msgspec.json.decode(body)
        if not isinstance(asked, dict) or asked.get("format") != FORMAT or not isinstance(asked.get("records"), list):
            raise ValueError(f"a body {{'format': '{FORMAT}', 'records': [...]}}")
    except (msgspec.DecodeError, ValueError) as exc:
        platform.requests["400"] += 1
        return web.json_response({"error": str(exc)}, status=400)
    fail = random.random() < platform.control.error_rate
    if fail and random.random() < 0.5:
        platform.requests["500"] += 1
        return web.json_response({"error": "internal error"}, status=500)
    results = platform.take(asked["records"])
    if fail:  # stored, but the answer is lost
        platform.requests["500 after storing"] += 1
        return web.json_response({"error": "internal error"}, status=500)
    platform.requests["200"] += 1
    return web.json_response({"results": results})


def _refusal(platform: Platform, request: web.Request, body: bytes) -> web.Response | None:
    """An answer given before the records are looked at: an outage, the rate, the signature."""
    left = platform.outage_until - time.monotonic()
    if left > 0:
        platform.requests["503"] += 1
        headers = {"Retry-After": str(math.ceil(left))}
        return web.json_response({"error": "down for maintenance"}, status=503, headers=headers)
    if not platform.window.take():
        platform.requests["429"] += 1
        return web.json_response({"error": "rate limited"}, status=429, headers={"Retry-After": "1"})
    why = platform.signed(request, body)
    if why is not None:
        platform.requests["401"] += 1
        return web.json_response({"error": why}, status=401)
    return None


async def received(request: web.Request) -> web.Response:
    platform = request.app[PLATFORM]
    try:
        limit = int(request.query.get("limit", str(len(platform.held))))
    except ValueError:
        return web.json_response({"error": "limit: a whole number"}, status=400)
    answer = {
        "count": len(platform.held),
        "by_type": dict(sorted(platform.by_type.items())),
        "requests": dict(sorted(platform.requests.items())),
        "outcomes": dict(sorted(platform.outcomes.items())),
        "digest": platform.digest.hexdigest(),
        "records": platform.last(limit),
    }
    return web.json_response(answer)


async def change(request: web.Request) -> web.Response:
    platform = request.app[PLATFORM]
    try:
        asked = msgspec.json.decode(await request.read())
        if not isinstance(asked, dict):
            raise msgspec.DecodeError("a JSON object of the settings to change")
        now = {**msgspec.to_builtins(platform.control), "outage_s": 0.0, "clear": False}
        platform.change(msgspec.convert({**now, **asked}, Control))
    except msgspec.DecodeError as exc:  # ValidationError included: an unknown or mistyped setting
        return web.json_response({"error": str(exc)}, status=400)
    return web.json_response(platform.settings())


async def settings(request: web.Request) -> web.Response:
    return web.json_response(request.app[PLATFORM].settings())


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "alive"})
