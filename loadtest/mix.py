"""The invoice mix of a promotion evening, and what the gateway may answer to each kind of invoice.

Real channels send mostly valid invoices, but also the sandbox endings, invoices another channel already
sent, broken ones, invoices of persons past their caps, and invoices from ticket-farm devices (many users
on one device). Each planned invoice carries the answers that are correct for it, so a load test can flag
a wrong answer (a resent invoice ``accepted``, a broken one not rejected for its reason) as a failure, and
count the expected refusals as successes.
"""

from __future__ import annotations

import random
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any

from loadtest import sample

CAP_REASONS = frozenset({"person_daily_cap", "person_monthly_cap", "seller_person_monthly_cap"})
# Weights of each kind among the invoices of an evening (per hundred).
WEIGHTS = {"valid": 62, "legacy": 5, "sandbox": 5, "duplicate": 8, "broken": 5, "capped": 8, "farm": 7}
SANDBOX_ENDINGS = ("995", "996", "997", "998", "999")


@dataclass(frozen=True)
class Planned:
    kind: str
    invoice: dict[str, Any]
    statuses: frozenset[str]  # what the gateway may answer
    reason: str | None = None  # the exact reason code a broken invoice must get


class Recent:
    """Invoices lately accepted from each channel, for other channels to send again (a shared pool)."""

    def __init__(self, size: int = 10_000) -> None:
        self.items: deque[tuple[str, dict[str, Any]]] = deque(maxlen=size)

    def add(self, channel: str, invoice: dict[str, Any]) -> None:
        self.items.append((channel, invoice))

    def other_than(self, channel: str, rng: random.Random) -> dict[str, Any] | None:
        for _ in range(4):
            if not self.items:
                return None
            sent_by, invoice = self.items[rng.randrange(len(self.items))]
            if sent_by != channel:
                return invoice
        return None


class Mix:
    """Draws the invoices of one channel user; persons near their caps and farm devices are shared."""

    def __init__(self, rng: random.Random, recent: Recent, capped_persons: int = 20, farm_devices: int = 3) -> None:
        self.rng = rng
        self.recent = recent
        # Fixed by index, so that every user (and every channel) names the same persons and devices.
        fixed = random.Random(7)
        self.capped = [sample.id_number(fixed) for _ in range(capped_persons)]
        self.farms = [f"farm-device-{i}" for i in range(farm_devices)]
        self.kinds = list(WEIGHTS)
        self.weights = list(WEIGHTS.values())

    def draw(self, channel: str) -> Planned:
        kind = self.rng.choices(self.kinds, self.weights)[0]
        if kind == "duplicate":
            again = self.recent.other_than(channel, self.rng)
            if again is not None:
                return Planned(kind, again, frozenset({"duplicate", "rate_limited", "rejected"}))
            kind = "valid"
        if kind == "broken":
            reason, invoice = self.rng.choice(sample.broken_invoices(self.rng))
            return Planned(kind, invoice, frozenset({"rejected"}), reason)
        return Planned(kind, self._fresh(kind), frozenset({"accepted", "rate_limited", "rejected"}))

    def _fresh(self, kind: str) -> dict[str, Any]:
        rng = self.rng
        if kind == "legacy":
            return sample.legacy_invoice(rng)
        if kind == "sandbox":
            return sample.invoice(rng, ending=rng.choice(SANDBOX_ENDINGS))
        if kind == "capped":
            i = rng.randrange(len(self.capped))
            user = {"id": f"cap-{i}", "device_id": f"cap-device-{i}", "real_name": "张三", "id_number": self.capped[i]}
            return sample.invoice(rng, user=user)
        if kind == "farm":
            who = rng.randrange(10**9)
            return sample.invoice(rng, user={"id": f"u{who}", "device_id": rng.choice(self.farms), "real_name": "张三"})
        return sample.invoice(rng)

    def batch(self, channel: str, size: int) -> list[Planned]:
        return [self.draw(channel) for _ in range(size)]


def wrong_answers(planned: list[Planned], results: list[dict[str, Any]]) -> list[str]:
    """What is wrong in a 202's results for these invoices (empty when every answer is one of the expected)."""
    if len(results) != len(planned):
        return [f"{len(results)} results for {len(planned)} invoices"]
    wrong = []
    for p, r in zip(planned, results, strict=True):
        status, reason = r.get("status"), r.get("reason")
        if status not in p.statuses:
            wrong.append(f"{p.kind} invoice answered {status}")
        elif p.reason is not None and reason != p.reason:
            wrong.append(f"broken invoice ({p.reason}) rejected as {reason}")
        elif p.reason is None and status == "rejected" and reason not in CAP_REASONS:
            wrong.append(f"{p.kind} invoice rejected as {reason}")
    return wrong


def tally(counter: Counter[str], planned: list[Planned], results: list[dict[str, Any]]) -> None:
    """Count answers by kind of invoice, status and reason (bounded: reasons are the gateway's codes)."""
    for p, r in zip(planned, results, strict=False):
        counter[f"{p.kind} {r.get('status')} {r.get('reason') or ''}".strip()] += 1
