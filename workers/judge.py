"""What becomes of a queued invoice once the tax service has answered: status, reason, feed entry."""

from __future__ import annotations

import msgspec

from gateway.model import Queued
from workers.verify import Verification


class Judgement(msgspec.Struct, frozen=True):
    status: str  # "verified" (to be fed), "ineligible" or "reversed"
    reason: str | None = None

    @property
    def feeds(self) -> bool:
        return self.status == "verified"


def judge(q: Queued, v: Verification) -> Judgement:
    """Eligibility on the verified data: the uploaded facts must be the tax authority's facts."""
    if v.outcome == "not_found":
        return Judgement("ineligible", "not_found_at_tax_authority")
    if v.outcome == "error" or v.invoice is None:
        return Judgement("ineligible", "verification_failed")
    found = v.invoice
    if found.status == "reversed":
        return Judgement("reversed", "reversed_at_verification")
    if found.amount_fen != q.amount_fen:
        return Judgement("ineligible", "amount_mismatch")
    if found.issue_date != q.issue_date:
        return Judgement("ineligible", "issue_date_mismatch")
    return Judgement("verified")
