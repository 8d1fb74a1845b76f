"""A request's tally for the daily reports (core/contract.py, core/rollup.py): what the 202 answered, by outcome,
reason and industry, carried to the workers inside the request's own stream entries, so that no upload spends a
round trip on it (but one that claims nothing: its tally is an entry of its own).

What is decided before the claim is counted here: every invoice received (with its amount, when the amount is a
valid figure), rejected by reason, rate-limited, capped by reason, a key sent twice in the request. Which of the
claimed invoices were accepted and which were duplicates is counted by the claim script, per invoice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from core import contract
from core.campaign import OTHER_INDUSTRY, Campaign
from gateway.admit import Results
from gateway.model import Invoice
from gateway.rules import amount_fen
from gateway.validate import Rejection
from ratelimit.caps import REFUSALS


def pre_claim(
    invoices: Sequence[Invoice | Rejection],
    results: Results,
    campaign: Campaign,
    msgpack: bool,
    valid_fen: Mapping[int, int] | None = None,
) -> tuple[bytes, list[str]]:
    """The tally of what was decided before the claim, and each invoice's industry (by index). ``msgpack``: the
    body was msgpack (its amounts are read so); ``valid_fen``: the amounts validation has read already, by index
    (those of the invoices that passed it), so that only the others are read here."""
    rows: dict[tuple[str, str, str], list[int]] = {}
    industries = []
    read = valid_fen or {}
    for i, item in enumerate(invoices):
        invoice = item if isinstance(item, Invoice) else None
        industry = campaign.eligibility.industry(invoice.category or "") if invoice else OTHER_INDUSTRY
        industries.append(industry)
        fen = read[i] if i in read else (amount_fen(invoice, campaign, msgpack) if invoice else 0)
        _add(rows, ("received", "", industry), fen)
        answer = results.get(i)
        if answer is None:
            continue  # going on to the claim, which counts it
        status, reason = answer["status"], answer.get("reason", "")
        if status == "rejected":
            _add(rows, ("capped" if reason in REFUSALS else "rejected", reason, industry))
        else:
            _add(rows, (status, "", industry))
    return contract.pack_rows([(m, r, ind, n, amount) for (m, r, ind), (n, amount) in rows.items()]), industries


def _add(rows: dict[tuple[str, str, str], list[int]], cell: tuple[str, str, str], amount: int = 0) -> None:
    found = rows.get(cell)
    if found is None:
        rows[cell] = [1, amount]
    else:
        found[0] += 1
        found[1] += amount
