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

import decimal
import math
import random
import time
from collections import Counter, deque

import msgspec

from workers import serve


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


class Simulator:
    """The service's state and its routes (served by workers/serve.py: ``gateway-worker simulator``). A call's
    answer is decided when it arrives and sent after its latency."""

    def __init__(self, median_ms: float, p99_ms: float, qps: float = 0.0) -> None:
        self.records: dict[str, Issued] = {}  # registered with /sandbox/invoices
        self.reds: set[tuple[str, str]] = set()  # (invoice key, red number) registered with /sandbox/red-invoices
        self.reversed: dict[str, Reversal] = {}  # reversed after the fact with /sandbox/reverse
        self.tries: Counter[str] = Counter()  # calls for each invoice ending 996
        self.stats = Stats()
        self.latency = Latency(median_ms, p99_ms)
        self.window = Window(qps)
        self.routes: dict[tuple[str, str], serve.Route] = {
            ("POST", "/verify"): self.verify,
            ("POST", "/red-letter"): self.red_letter,
            ("POST", "/sandbox/invoices"): self.register,
            ("POST", "/sandbox/red-invoices"): self.register_reds,
            ("POST", "/sandbox/reverse"): self.reverse,
            ("GET", "/sandbox/stats"): self.stats_now,
            ("GET", "/healthz"): self.healthz,
        }

    def verify(self, body: bytes) -> serve.Reply:
        """The answer, sent after the simulated latency (a refusal for the rate at once)."""
        self.stats.calls += 1
        if not self.window.take():
            self.stats.refused += 1
            return serve.json(429, {"error": "rate limited"}, (("Retry-After", "1"),))
        self.stats.max_per_second = self.window.busiest
        delay = self.latency.draw()
        try:
            asked = msgspec.json.decode(body)
            number, amount = str(asked["number"]), decimal.Decimal(str(asked["amount"]))
        except (msgspec.DecodeError, ValueError, KeyError, TypeError, AttributeError, decimal.InvalidOperation):
            return serve.json(400, {"error": "bad request"}, delay_s=delay)
        key = str(asked.get("code") or "") + number
        ending = number[-3:]
        if ending == "996":  # only these need their tries remembered: a count per key would grow without end
            self.tries[key] += 1
        if ending == "999" or (ending == "996" and self.tries[key] <= 2):
            return serve.json(404, {"found": False}, delay_s=delay)
        if ending == "995":
            return serve.json(500, {"error": "internal error"}, delay_s=delay)
        found = self.records.get(key)
        if found is None:
            found = Issued(
                number=number,
                code=str(asked.get("code") or ""),
                issue_date=str(asked.get("issue_date")),
                amount=f"{amount + (1 if ending == '998' else 0):.2f}",
                status="reversed" if ending == "997" else "normal",
            )
        found = _after_the_fact(found, self.reversed.get(key))
        return serve.Reply(200, b'{"found":true,"invoice":' + msgspec.json.encode(found) + b"}", delay_s=delay)

    def register(self, body: bytes) -> serve.Reply:
        try:
            issued = msgspec.json.decode(body, type=list[Issued])
        except msgspec.DecodeError as exc:
            return serve.json(400, {"error": str(exc)})
        for inv in issued:
            self.records[inv.code + inv.number] = inv
        return serve.json(200, {"registered": len(issued)})

    def red_letter(self, body: bytes) -> serve.Reply:
        try:
            asked = msgspec.json.decode(body, type=Red)
        except msgspec.DecodeError:
            return serve.json(400, {"error": "bad request"})
        key = asked.code + asked.number
        if asked.number.endswith("995"):
            return serve.json(500, {"error": "internal error"})
        record = self.records.get(key)
        held = (
            asked.number.endswith("997") or (record is not None and record.status == "reversed") or key in self.reversed
        )
        if held or (key, asked.red_number) in self.reds:
            return serve.json(200, {"found": True, "red_number": asked.red_number})
        return serve.json(404, {"found": False})

    def register_reds(self, body: bytes) -> serve.Reply:
        try:
            reds = msgspec.json.decode(body, type=list[Red])
        except msgspec.DecodeError as exc:
            return serve.json(400, {"error": str(exc)})
        self.reds.update((r.code + r.number, r.red_number) for r in reds)
        return serve.json(200, {"registered": len(reds)})

    def reverse(self, body: bytes) -> serve.Reply:
        try:
            reversals = msgspec.json.decode(body, type=dict[str, list[Reversal]])["invoices"]
        except (msgspec.DecodeError, KeyError) as exc:
            return serve.json(400, {"error": f'{{"invoices": [{{"number", "code", "amount"}}]}}: {exc}'})
        for r in reversals:
            self.reversed[r.code + r.number] = r
        return serve.json(200, {"reversed": len(reversals)})

    def stats_now(self, body: bytes) -> serve.Reply:
        return serve.json(200, self.stats)

    def healthz(self, body: bytes) -> serve.Reply:
        return serve.json(200, {"status": "alive"})


def _after_the_fact(found: Issued, reversal: Reversal | None) -> Issued:
    """The invoice as the tax system holds it after a reversal reported to the sandbox, if any."""
    if reversal is None:
        return found
    if reversal.amount is None:
        return msgspec.structs.replace(found, status="reversed")
    return msgspec.structs.replace(found, amount=reversal.amount)
