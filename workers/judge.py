"""What becomes of a queued invoice once the tax service has answered: a final status with its reason and
feed entry, or another try later."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from gateway.model import Queued
from workers.verify import Verification

MAX_ERROR_BACKOFF_S = 300.0


class Judgement(msgspec.Struct, frozen=True):
    status: str  # "verified" (to be fed), "ineligible" or "reversed"
    reason: str | None = None

    @property
    def feeds(self) -> bool:
        return self.status == "verified"


class Defer(msgspec.Struct, frozen=True):
    """Ask the tax service again in ``delay_s``; ``spend_try`` is false when nothing was asked (breaker open)."""

    delay_s: float
    spend_try: bool = True


def judge(
    q: Queued, v: Verification, tries: int, recheck_s: Sequence[float], error_retries: int, wait_s: float = 5.0
) -> Judgement | Defer:
    """Eligibility on the verified data: the uploaded facts must be the tax authority's facts.

    ``tries`` is how many times this invoice was asked again already. "Not found" is asked again after each
    delay of ``recheck_s`` before it is final; a failing call is asked again ``error_retries`` times, backing
    off exponentially; while the breaker is open the invoice waits ``wait_s`` without spending a try.
    """
    if v.outcome == "unavailable":
        return Defer(wait_s, spend_try=False)
    if v.outcome == "not_found":
        if tries < len(recheck_s):
            return Defer(recheck_s[tries])
        return Judgement("ineligible", "not_found_at_tax_authority")
    if v.outcome == "error" or v.invoice is None:
        if tries < error_retries:
            return Defer(min(2.0**tries, MAX_ERROR_BACKOFF_S))
        return Judgement("ineligible", "verification_failed")
    found = v.invoice
    if found.status == "reversed":
        return Judgement("reversed", "reversed_at_verification")
    if found.amount_fen != q.amount_fen:
        return Judgement("ineligible", "amount_mismatch")
    if found.issue_date != q.issue_date:
        return Judgement("ineligible", "issue_date_mismatch")
    return Judgement("verified")
