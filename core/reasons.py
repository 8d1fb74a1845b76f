"""Every reason code an invoice can carry after the gateway's own offline rules (those are the rule table of
gateway/rules.py): refusals at admission, and what the workers, the reviewers and reversals decide. docs/rules.md
and the OpenAPI document list them from here; tests/unit/test_reasons.py checks that every code the workers,
the caps and the reviews write is here.

Statuses an invoice goes through: ``accepted`` (queued, or waiting for a re-check) -> ``verified`` ->
``eligible`` (in a feed batch); ``ineligible``, ``held`` (until a review), ``reversed``; ``duplicate`` for a
channel whose upload came after another's. An invoice verified again before payout (workers/reverify.py) may
become ``reversed`` or ``ineligible`` after ``verified`` or ``eligible``.
"""

from __future__ import annotations

from typing import NamedTuple

STATUSES = ("accepted", "verified", "eligible", "ineligible", "held", "duplicate", "reversed")
# An upload's answer per invoice (the 202's results).
RESULT_STATUSES = ("accepted", "duplicate", "rejected", "rate_limited")


class Reason(NamedTuple):
    code: str
    status: str  # the status (or the upload's result) it comes with
    stage: str  # who decides
    meaning: str


ADMISSION = (
    Reason("person_daily_cap", "rejected", "admission", "the person has reached the campaign's cap per day"),
    Reason("person_monthly_cap", "rejected", "admission", "the person has reached the campaign's cap per month"),
    Reason(
        "seller_person_monthly_cap",
        "rejected",
        "admission",
        "the person has reached the campaign's cap per month from this seller",
    ),
)
VERIFICATION = (
    Reason(
        "not_found_at_tax_authority",
        "ineligible",
        "verification",
        "the tax service does not know the invoice, after the re-checks",
    ),
    Reason("verification_failed", "ineligible", "verification", "the tax service kept failing for this invoice"),
    Reason("amount_mismatch", "ineligible", "verification", "the total differs from the tax service's"),
    Reason("issue_date_mismatch", "ineligible", "verification", "the issue date differs from the tax service's"),
    Reason("seller_mismatch", "ineligible", "verification", "the seller differs from the tax service's"),
    Reason(
        "buyer_name_mismatch",
        "ineligible",
        "verification",
        "the buyer's name differs from the tax service's (both trimmed, NFKC)",
    ),
    Reason(
        "excluded_invoice_kind",
        "ineligible",
        "verification",
        "issued on behalf (代开), fixed-amount (定额) or purchase (收购): campaign `[eligibility] excluded_kinds`",
    ),
    Reason("buyer_not_natural_person", "ineligible", "verification", "the buyer is an organisation"),
    Reason(
        "category_not_eligible", "ineligible", "verification", "the category is not among the campaign's industries"
    ),
    Reason("category_unknown", "ineligible", "verification", "no category is known and the campaign wants one"),
    Reason("reversed_at_verification", "reversed", "verification", "the tax service says it was reversed (红冲)"),
)
REVERIFICATION = (
    Reason(
        "reversed_at_reverification",
        "reversed",
        "re-verification",
        "verified again before payout (campaign `reverify`): the tax service says it was reversed (红冲) since",
    ),
    Reason(
        "changed_at_reverification",
        "ineligible",
        "re-verification",
        "verified again before payout: the tax service now holds another total, issue date or seller (a partial"
        " reversal)",
    ),
    Reason(
        "not_found_at_reverification",
        "ineligible",
        "re-verification",
        "verified again before payout: the tax service no longer knows the invoice",
    ),
)
RISK = (
    Reason("blacklisted_person", "held", "risk", "the person is on the blacklist"),
    Reason("blacklisted_device", "held", "risk", "the device is on the blacklist"),
    Reason("blacklisted_seller", "held", "risk", "the seller is on the blacklist"),
    Reason("device_many_persons", "held", "risk", "one device uploads for more persons than the campaign allows"),
    Reason("seller_few_persons", "held", "risk", "a seller's many invoices all go to very few persons"),
    Reason("seller_high_value_burst", "held", "risk", "a burst of high-value invoices from one seller"),
    Reason("seller_reversal_spike", "held", "risk", "the seller reversed more invoices than the campaign allows"),
    Reason("upload_far_from_city", "held", "risk", "the upload's location is far from the campaign's city"),
)
LATER = (
    Reason("released_in_review", "verified", "review", "an admin released the held invoice: it goes to the feed"),
    Reason("rejected_in_review", "ineligible", "review", "an admin rejected the held invoice"),
    Reason("reversed_by_red_invoice", "reversed", "reversal", "a red-letter invoice (红冲) cancelled it"),
)
ALL = (*ADMISSION, *VERIFICATION, *REVERIFICATION, *RISK, *LATER)
CODES = tuple(dict.fromkeys(r.code for r in ALL))
