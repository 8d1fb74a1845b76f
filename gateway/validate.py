"""Stage 2 of an upload, validation: the offline checks of each invoice (SPEC.md, pipeline stage 2): formats,
check characters, dates, amounts, region, campaign window, applied as the rule table of gateway/rules.py says
(docs/rules.md is that table).

``check`` returns either the invoice as it will be queued, or a ``Rejection`` carrying its reason code;
``validate`` does it for a request's invoices, the first of a key going on and the others answered duplicate.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import zoneinfo
from typing import Any

import msgspec

from core.campaign import Campaign
from core.contract import Queued
from core.hashing import keyed_hash, name_ref, user_ref
from core.times import local_minute
from gateway import rules
from gateway.model import Invoice, Location


class Rejection(msgspec.Struct, frozen=True):
    reason: str
    detail: str


def invoice_key(number: str, code: str | None) -> str:
    """``number`` for a digital invoice, ``code`` + ``number`` for a legacy one."""
    return number if code is None else code + number


def validate(
    items: list[Invoice | Rejection],
    campaign: Campaign,
    channel: str,
    person_secret: str,
    now_ms: int,
    msgpack: bool = False,
) -> tuple[list[tuple[int, Queued]], dict[int, dict[str, Any]]]:
    """The request's invoices that go on (each with its index) and the answers of those that do not: rejected
    with their reason, or a key sent twice in one request (the first goes on, the rest are duplicates)."""
    results: dict[int, dict[str, Any]] = {}
    going: dict[str, tuple[int, Queued]] = {}
    day = today(campaign, now_ms)
    for i, item in enumerate(items):
        checked = (
            item if isinstance(item, Rejection) else check(item, campaign, channel, person_secret, now_ms, msgpack, day)
        )
        if isinstance(checked, Rejection):
            results[i] = {"index": i, "status": "rejected", "reason": checked.reason, "detail": checked.detail}
        elif checked.key in going:
            results[i] = {"index": i, "key": checked.key, "status": "duplicate"}
        else:
            going[checked.key] = (i, checked)
    return list(going.values()), results


def check(
    invoice: Invoice,
    campaign: Campaign,
    channel: str,
    person_secret: str,
    now_ms: int,
    msgpack: bool = False,
    day: dt.date | None = None,
) -> Queued | Rejection:
    """Check one invoice against the rules (gateway/rules.py); on success give it its key, hashes and
    acceptance time. ``msgpack``: the body was msgpack (its amount is read so); ``day``: today in the campaign's
    zone, when the caller worked it out once for a request."""
    subject = rules.Subject(invoice, campaign, day or today(campaign, now_ms), msgpack)
    broken = rules.first_broken(subject)
    if broken is not None:
        return Rejection(*broken)
    user = invoice.user
    ref = user_ref(person_secret, channel, user.id)
    # Without an ID number the person is the channel's user: the same hash, not computed twice.
    person = ref if user.id_number is None else keyed_hash(person_secret, "id:" + user.id_number)
    return Queued(
        key=invoice_key(invoice.number, invoice.code),
        number=invoice.number,
        code=invoice.code or "",
        issue_date=invoice.issue_date,
        amount_fen=subject.fen,
        seller_tax_id=invoice.seller_tax_id,
        seller_name=invoice.seller_name or "",
        category=invoice.category or "",
        check_code=invoice.check_code or "",
        person=person,
        user_ref=ref,
        device_ref=keyed_hash(person_secret, f"device:{channel}:{user.device_id}"),
        buyer_ref=name_ref(person_secret, subject.buyer, normal=True),
        channel=channel,
        accepted_at_ms=now_ms,
        distance_km=-1.0 if user.location is None else round(_distance_km(user.location, campaign), 1),
    )


def today(campaign: Campaign, now_ms: int) -> dt.date:
    """The date in the campaign's time zone (the caps' zone) at ``now_ms``."""
    return local_minute(now_ms, zone(campaign.caps.timezone)).date()


@functools.lru_cache(maxsize=8)
def zone(name: str) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(name)


def _distance_km(loc: Location, campaign: Campaign) -> float:
    """Great-circle distance from the campaign's centre (the haversine formula, Earth radius 6371 km): only
    this number travels on, never the location itself."""
    lat1, lon1 = math.radians(loc.lat), math.radians(loc.lon)
    lat2, lon2 = math.radians(campaign.risk.center_lat), math.radians(campaign.risk.center_lon)
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(h))
