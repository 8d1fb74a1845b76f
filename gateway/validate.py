"""Stage 2 of an upload, validation: the offline checks of each invoice (SPEC.md, pipeline stage 2): formats,
check characters, dates, amounts, region, campaign window.

``check`` returns either the invoice as it will be queued, or a ``Rejection`` carrying its reason code;
``validate`` does it for a request's invoices, the first of a key going on and the others answered duplicate.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import re
from typing import Any

import msgspec

from core import checks
from core.campaign import Campaign
from core.contract import Queued
from core.hashing import keyed_hash, name_ref
from gateway.model import Invoice, Location

DIGITAL_NUMBER = re.compile(r"[0-9]{20}")
LEGACY_NUMBER = re.compile(r"[0-9]{8}")
LEGACY_CODE = re.compile(r"[0-9]{10}|[01][0-9]{11}")
CHECK_CODE = re.compile(r"[0-9]{6}")
ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
MAX_AMOUNT = decimal.Decimal("100000000")  # 1e8 yuan: no consumer invoice comes near; guards the fen integer
MAX_TEXT = 200


class Rejection(msgspec.Struct, frozen=True):
    reason: str
    detail: str


def invoice_key(number: str, code: str | None) -> str:
    """``number`` for a digital invoice, ``code`` + ``number`` for a legacy one."""
    return number if code is None else code + number


def validate(
    items: list[Invoice | Rejection], campaign: Campaign, channel: str, person_secret: str, now_ms: int
) -> tuple[list[tuple[int, Queued]], dict[int, dict[str, Any]]]:
    """The request's invoices that go on (each with its index) and the answers of those that do not: rejected
    with their reason, or a key sent twice in one request (the first goes on, the rest are duplicates)."""
    results: dict[int, dict[str, Any]] = {}
    going: dict[str, tuple[int, Queued]] = {}
    for i, item in enumerate(items):
        checked = item if isinstance(item, Rejection) else check(item, campaign, channel, person_secret, now_ms)
        if isinstance(checked, Rejection):
            results[i] = {"index": i, "status": "rejected", "reason": checked.reason, "detail": checked.detail}
        elif checked.key in going:
            results[i] = {"index": i, "key": checked.key, "status": "duplicate"}
        else:
            going[checked.key] = (i, checked)
    return list(going.values()), results


def check(invoice: Invoice, campaign: Campaign, channel: str, person_secret: str, now_ms: int) -> Queued | Rejection:
    """Check one invoice; on success give it its key, hashes and acceptance time."""
    problem = _format_problem(invoice) or _campaign_problem(invoice, campaign)
    if problem is not None:
        return problem
    user = invoice.user
    user_ref = keyed_hash(person_secret, f"user:{channel}:{user.id}")
    # Without an ID number the person is the channel's user: the same hash, not computed twice.
    person = user_ref if user.id_number is None else keyed_hash(person_secret, "id:" + user.id_number)
    return Queued(
        key=invoice_key(invoice.number, invoice.code),
        number=invoice.number,
        code=invoice.code or "",
        issue_date=invoice.issue_date,
        amount_fen=int(invoice.amount * 100),
        seller_tax_id=invoice.seller_tax_id,
        seller_name=invoice.seller_name or "",
        category=invoice.category or "",
        check_code=invoice.check_code or "",
        person=person,
        user_ref=user_ref,
        device_ref=keyed_hash(person_secret, f"device:{channel}:{user.device_id}"),
        buyer_ref=name_ref(person_secret, invoice.buyer_name),
        channel=channel,
        accepted_at_ms=now_ms,
        distance_km=-1.0 if user.location is None else round(_distance_km(user.location, campaign), 1),
    )


def _distance_km(loc: Location, campaign: Campaign) -> float:
    """Great-circle distance from the campaign's centre (the haversine formula, Earth radius 6371 km): only
    this number travels on, never the location itself."""
    lat1, lon1 = math.radians(loc.lat), math.radians(loc.lon)
    lat2, lon2 = math.radians(campaign.risk.center_lat), math.radians(campaign.risk.center_lon)
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(h))


def _format_problem(inv: Invoice) -> Rejection | None:
    if inv.code is None:
        if LEGACY_NUMBER.fullmatch(inv.number):
            return Rejection("missing_code", "an 8-digit legacy invoice number needs its 10- or 12-digit code")
        if not DIGITAL_NUMBER.fullmatch(inv.number):
            return Rejection("invalid_number", "20 digits for a digital invoice, 8 digits for a legacy one")
    else:
        if not LEGACY_NUMBER.fullmatch(inv.number):
            return Rejection("invalid_number", "a legacy invoice number (with a code) is 8 digits")
        if not LEGACY_CODE.fullmatch(inv.code):
            return Rejection("invalid_code", "10 digits, or 12 digits starting with 0 or 1")
    if inv.check_code is not None and not CHECK_CODE.fullmatch(inv.check_code):
        return Rejection("invalid_check_code", "the last 6 digits of the check code")
    return _date_problem(inv) or _amount_problem(inv) or _party_problem(inv)


def _date_problem(inv: Invoice) -> Rejection | None:
    if not ISO_DATE.fullmatch(inv.issue_date):
        return Rejection("invalid_issue_date", "YYYY-MM-DD")
    try:
        dt.date.fromisoformat(inv.issue_date)
    except ValueError:
        return Rejection("invalid_issue_date", "not a calendar date")
    if inv.code is None and inv.number[:2] != inv.issue_date[2:4]:
        return Rejection("invalid_number", "the number's year digits differ from the issue date's year")
    return None


def amount_fen(inv: Invoice) -> int:
    """The invoice's total in fen when it is a valid figure (the daily reports' received amount), else 0."""
    return int(inv.amount * 100) if _amount_problem(inv) is None else 0


def _amount_problem(inv: Invoice) -> Rejection | None:
    amount = inv.amount
    if not amount.is_finite() or amount <= 0:
        return Rejection("invalid_amount", "a positive number of yuan")
    if amount >= MAX_AMOUNT:
        return Rejection("invalid_amount", "implausibly large")
    if amount != amount.quantize(decimal.Decimal("0.01"), rounding=decimal.ROUND_DOWN):
        return Rejection("invalid_amount", "at most 2 decimals")
    return None


def _party_problem(inv: Invoice) -> Rejection | None:
    problem = checks.uscc_problem(inv.seller_tax_id)
    if problem is not None:
        return Rejection("invalid_seller_tax_id", problem)
    user = inv.user
    if not inv.buyer_name.strip() or len(inv.buyer_name) > MAX_TEXT:
        return Rejection("invalid_buyer_name", "the buyer's name, 1 to 200 characters")
    if not user.id or not user.device_id or len(user.id) > MAX_TEXT or len(user.device_id) > MAX_TEXT:
        return Rejection("invalid_user", "user.id and user.device_id, 1 to 200 characters each")
    if user.id_number is not None and (problem := checks.id_number_problem(user.id_number)) is not None:
        return Rejection("invalid_id_number", problem)
    loc = user.location
    if loc is not None and not (-90 <= loc.lat <= 90 and -180 <= loc.lon <= 180):
        return Rejection("invalid_location", "lat in [-90, 90], lon in [-180, 180]")
    for text in (inv.seller_name, inv.category):
        if text is not None and len(text) > MAX_TEXT:
            return Rejection("invalid_text", "seller_name and category are at most 200 characters")
    return None


def _province(number: str, code: str | None) -> str:
    """Province digits: 3-4 of a digital number; the area's first two of a legacy code (after a 12-digit
    code's leading 0 or 1)."""
    if code is None:
        return number[2:4]
    return code[:2] if len(code) == 10 else code[1:3]


def _campaign_problem(inv: Invoice, campaign: Campaign) -> Rejection | None:
    issued = dt.date.fromisoformat(inv.issue_date)
    if not campaign.starts <= issued <= campaign.ends:
        return Rejection("outside_campaign_window", f"issued outside {campaign.starts} to {campaign.ends}")
    province = _province(inv.number, inv.code)
    if province not in campaign.invoice_provinces:
        return Rejection("invoice_outside_region", "the invoice was issued in another province")
    if not checks.uscc_division(inv.seller_tax_id).startswith(campaign.seller_divisions):
        return Rejection("seller_outside_region", "the seller is not registered in the campaign's city")
    if inv.amount * 100 < campaign.min_amount_fen:
        return Rejection("below_minimum_amount", f"the total must be at least {campaign.min_amount_fen / 100:.2f}")
    real_name = inv.user.real_name
    if campaign.buyer_must_match_real_name and real_name is not None and real_name.strip() != inv.buyer_name.strip():
        return Rejection("buyer_name_mismatch", "the buyer is not the channel's real-name-verified user")
    return None
