"""The tax authority's verification service (查验), simulated for the dev stack and the tests.

``POST /verify`` with ``{"number", "code", "issue_date", "amount", "check_code"}`` answers 200 with the
invoice as the tax system holds it, 404 when it holds none, 429 beyond its rate, or a server error. The
answer is chosen by the number's last three digits, as SPEC.md's sandbox table says:

- ``999``: 404 not found, always
- ``998``: found, with a total 1.00 yuan off the uploaded amount
- ``997``: found, already reversed by a red-letter invoice
- ``996``: 404 on the first two tries for that invoice, then found
- ``995``: 500 on every try
- anything else: found, exactly as uploaded

``POST /red-letter`` with ``{"number", "code", "red_number"}`` says whether the tax system holds that red-letter
invoice cancelling that invoice (the workers confirm another channel's reversal with it): 200 when the invoice
ends ``997`` (reversed, whatever red number is named), was registered ``reversed``, or the red invoice was
registered with ``POST /sandbox/red-invoices`` (``[{"red_number", "number", "code"}]``); 500 for ``995``; 404
otherwise.

"Exactly as uploaded" covers what the request carries (number, code, date, amount). The rest of an invoice
(seller, buyer, kind, category) is known only for invoices registered with ``POST /sandbox/invoices``, which
plays the tax system's records; for others the answer leaves those fields out and the workers judge the
uploaded ones. ``POST /sandbox/reverse`` with ``{"invoices": [{"number", "code", "amount"}]}`` reverses invoices
after the fact, as a seller's red-letter invoice does at the tax authority: from then on each is answered
reversed, or, with ``amount``, partially reversed (found, with that total). It tries the re-verification before
payout (workers/reverify.py). ``GET /sandbox/stats`` counts the calls, so that tests can prove the workers kept
to the rate.

Latency follows a log-normal distribution given by its median and its 99th percentile, as a remote service's
does: most answers quick, a long tail.
"""

from __future__ import annotations

import asyncio
import decimal
import math
import random
import time
from collections import Counter, deque

import msgspec
from aiohttp import web


class Issued(msgspec.Struct, frozen=True, omit_defaults=True):
    """An invoice as the tax system holds it. ``kind``: ``normal``, ``on_behalf`` (代开), ``fixed_amount``
    (定额) or ``purchase`` (收购); ``buyer_kind``: ``person`` or ``organisation``."""

    number: str
    issue_date: str
    amount: str
    code: str = ""
    seller_tax_id: str | None = None
    seller_name: str | None = None
    buyer_name: str | None = None
    buyer_kind: str = "person"
    kind: str = "normal"
    category: str | None = None
    status: str = "normal"


class Stats(msgspec.Struct):
    calls: int = 0  # every /verify request, refused or not
    refused: int = 0  # answered 429
    max_per_second: int = 0  # the most calls admitted in any one-second window


class Latency:
    """Log-normal latency: ``median_ms`` and ``p99_ms`` fix it (p99 ≤ median means a constant)."""

    Z99 = 2.3263

    def __init__(self, median_ms: float, p99_ms: float) -> None:
        self.median_s = max(0.0, median_ms) / 1000
        self.sigma = math.log(p99_ms / median_ms) / self.Z99 if p99_ms > median_ms > 0 else 0.0

    def draw(self) -> float:
        if not self.median_s:
            return 0.0
        return self.median_s * math.exp(random.gauss(0.0, self.sigma)) if self.sigma else self.median_s


class Window:
    """The service's own rate limit: at most ``qps`` calls in any sliding second (0: none). ``busiest`` is the
    most it ever admitted in one second, so a test can prove a client kept to the rate."""

    def __init__(self, qps: float) -> None:
        self.qps = qps
        self.admitted: deque[float] = deque()
        self.busiest = 0

    def take(self) -> bool:
        now = time.monotonic()
        while self.admitted and self.admitted[0] <= now - 1.0:
            self.admitted.popleft()
        if self.qps > 0 and len(self.admitted) >= self.qps:
            return False
        self.admitted.append(now)
        self.busiest = max(self.busiest, len(self.admitted))
        return True


class Red(msgspec.Struct, frozen=True):
    """A red-letter invoice (红字发票) as the tax system holds it: its number, and the invoice it cancels."""

    red_number: str
    number: str
    code: str = ""


class Reversal(msgspec.Struct, frozen=True):
    """An invoice reversed after the fact: wholly, or (``amount``) down to a new total."""

    number: str
    code: str = ""
    amount: str | None = None


RECORDS: web.AppKey[dict[str, Issued]] = web.AppKey("records", dict)
REDS: web.AppKey[set[tuple[str, str]]] = web.AppKey("reds", set)
REVERSED: web.AppKey[dict[str, Reversal]] = web.AppKey("reversed", dict)
TRIES: web.AppKey[Counter[str]] = web.AppKey("tries", Counter)
STATS: web.AppKey[Stats] = web.AppKey("stats", Stats)


def create_app(median_ms: float, p99_ms: float, qps: float = 0.0) -> web.Application:
    app = web.Application()
    app[RECORDS] = {}
    app[REDS] = set()
    app[REVERSED] = {}
    app[TRIES] = Counter()
    app[STATS] = Stats()
    latency = Latency(median_ms, p99_ms)
    window = Window(qps)

    async def verify(request: web.Request) -> web.Response:
        stats = app[STATS]
        stats.calls += 1
        if not window.take():
            stats.refused += 1
            return web.json_response({"error": "rate limited"}, status=429, headers={"Retry-After": "1"})
        stats.max_per_second = window.busiest
        delay = latency.draw()
        if delay:
            await asyncio.sleep(delay)
        try:
            asked = msgspec.json.decode(await request.read())
            number, amount = str(asked["number"]), decimal.Decimal(str(asked["amount"]))
        except (msgspec.DecodeError, ValueError, KeyError, TypeError, AttributeError, decimal.InvalidOperation):
            return web.json_response({"error": "bad request"}, status=400)
        key = str(asked.get("code") or "") + number
        ending = number[-3:]
        if ending == "996":  # only these need their tries remembered: a count per key would grow without end
            app[TRIES][key] += 1
        if ending == "999" or (ending == "996" and app[TRIES][key] <= 2):
            return web.json_response({"found": False}, status=404)
        if ending == "995":
            return web.json_response({"error": "internal error"}, status=500)
        found = app[RECORDS].get(key)
        if found is None:
            found = Issued(
                number=number,
                code=str(asked.get("code") or ""),
                issue_date=str(asked.get("issue_date")),
                amount=f"{amount + (1 if ending == '998' else 0):.2f}",
                status="reversed" if ending == "997" else "normal",
            )
        found = _after_the_fact(found, app[REVERSED].get(key))
        return web.Response(
            body=b'{"found":true,"invoice":' + msgspec.json.encode(found) + b"}", content_type="application/json"
        )

    async def register(request: web.Request) -> web.Response:
        try:
            issued = msgspec.json.decode(await request.read(), type=list[Issued])
        except msgspec.DecodeError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        for inv in issued:
            app[RECORDS][inv.code + inv.number] = inv
        return web.json_response({"registered": len(issued)})

    async def red_letter(request: web.Request) -> web.Response:
        try:
            asked = msgspec.json.decode(await request.read(), type=Red)
        except msgspec.DecodeError:
            return web.json_response({"error": "bad request"}, status=400)
        key = asked.code + asked.number
        if asked.number.endswith("995"):
            return web.json_response({"error": "internal error"}, status=500)
        record = app[RECORDS].get(key)
        held = (
            asked.number.endswith("997") or (record is not None and record.status == "reversed") or key in app[REVERSED]
        )
        if held or (key, asked.red_number) in app[REDS]:
            return web.json_response({"found": True, "red_number": asked.red_number})
        return web.json_response({"found": False}, status=404)

    async def register_reds(request: web.Request) -> web.Response:
        try:
            reds = msgspec.json.decode(await request.read(), type=list[Red])
        except msgspec.DecodeError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        app[REDS].update((r.code + r.number, r.red_number) for r in reds)
        return web.json_response({"registered": len(reds)})

    async def reverse(request: web.Request) -> web.Response:
        try:
            reversals = msgspec.json.decode(await request.read(), type=dict[str, list[Reversal]])["invoices"]
        except (msgspec.DecodeError, KeyError) as exc:
            return web.json_response({"error": f'{{"invoices": [{{"number", "code", "amount"}}]}}: {exc}'}, status=400)
        for r in reversals:
            app[REVERSED][r.code + r.number] = r
        return web.json_response({"reversed": len(reversals)})

    async def stats(request: web.Request) -> web.Response:
        return web.Response(body=msgspec.json.encode(app[STATS]), content_type="application/json")

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "alive"})

    app.router.add_post("/verify", verify)
    app.router.add_post("/red-letter", red_letter)
    app.router.add_post("/sandbox/invoices", register)
    app.router.add_post("/sandbox/red-invoices", register_reds)
    app.router.add_post("/sandbox/reverse", reverse)
    app.router.add_get("/sandbox/stats", stats)
    app.router.add_get("/healthz", healthz)
    return app


def _after_the_fact(found: Issued, reversal: Reversal | None) -> Issued:
    """The invoice as the tax system holds it after a reversal reported to the sandbox, if any."""
    if reversal is None:
        return found
    if reversal.amount is None:
        return msgspec.structs.replace(found, status="reversed")
    return msgspec.structs.replace(found, amount=reversal.amount)
