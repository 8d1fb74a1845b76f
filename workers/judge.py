"""What becomes of a queued invoice once the tax service has answered: a final status with its reason and
feed entry, or another try later."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from core.campaign import Eligibility
from core.contract import Queued
from workers.verify import Verification, Verified

MAX_ERROR_BACKOFF_S = 300.0
ANY_INVOICE = Eligibility()  # no campaign rules beyond the verified facts


class Judgement(msgspec.Struct, frozen=True):
    status: str  # "verified" (to be fed), "ineligible", "reversed" or "held" (risk review)
    reason: str | None = None

    @property
    def feeds(self) -> bool:
        return self.status == "verified"


class Defer(msgspec.Struct, frozen=True):
    """Ask the tax service again in ``delay_s``; ``spend_try`` is false when nothing was asked (breaker open)."""

    delay_s: float
    spend_try: bool = True


def judge(
    q: Queued,
    v: Verification,
    tries: int,
    recheck_s: Sequence[float],
    error_retries: int,
    wait_s: float = 5.0,
    rules: Eligibility = ANY_INVOICE,
) -> Judgement | Defer:
    """Eligibility on the verified data: the uploaded facts must be the tax authority's facts, and those facts
    must meet the campaign's ``rules``.

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
    reason = _mismatch(q, found) or _ineligible(q, found, rules)
    return Judgement("verified") if reason is None else Judgement("ineligible", reason)


def _mismatch(q: Queued, found: Verified) -> str | None:
    """An uploaded fact the tax system contradicts. The campaign's window, minimum and region were checked
    on the uploaded facts at the gateway, so once these agree they hold for the verified ones too."""
    if found.amount_fen != q.amount_fen:
        return "amount_mismatch"
    if found.issue_date != q.issue_date:
        return "issue_date_mismatch"
    if found.seller_tax_id is not None and found.seller_tax_id != q.seller_tax_id:
        return "seller_mismatch"
    if found.buyer_ref is not None and found.buyer_ref != q.buyer_ref:
        return "buyer_name_mismatch"
    return None


def _ineligible(q: Queued, found: Verified, rules: Eligibility) -> str | None:
    if found.kind in rules.excluded_kinds:
        return "excluded_invoice_kind"
    if rules.buyer_must_be_person and found.buyer_kind != "person":
        return "buyer_not_natural_person"
    category = found.category or q.category
    if rules.categories:
        if not category:
            return None if rules.unknown_category_eligible else "category_unknown"
        if not any(category.startswith(c) for c in rules.categories):
            return "category_not_eligible"
    return None
