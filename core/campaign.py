"""A campaign's rules, read from its TOML file (deploy/campaigns/), checked whole before anything runs.

``load`` refuses a file with a wrong type, a value out of range or rules that contradict each other, with a
``ConfigError`` that names the file, the place and the problem (``gateway check-campaign FILE`` prints them all).
"""

from __future__ import annotations

import datetime as dt
import tomllib
import zoneinfo
from pathlib import Path
from typing import Annotated

import msgspec

from core.settings import ConfigError

Count = Annotated[int, msgspec.Meta(ge=0)]  # 0 turns a risk rule off
Positive = Annotated[int, msgspec.Meta(ge=1)]
Rate = Annotated[float, msgspec.Meta(gt=0)]
Seconds = Annotated[float, msgspec.Meta(ge=0)]
INVOICE_KINDS = ("on_behalf", "fixed_amount", "purchase")


class Caps(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    person_daily: Positive
    person_monthly: Positive
    seller_person_monthly: Positive
    timezone: str = "Asia/Shanghai"
    ineligible_returns_slot: bool = True


class ChannelLimits(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Rate limits of one channel (each a rate and, for the channel's, a burst)."""

    channel_requests_per_s: Rate
    channel_requests_burst: Positive
    channel_invoices_per_s: Rate
    channel_invoices_burst: Positive
    user_invoices_per_minute: Rate
    user_invoices_per_day: Rate
    device_invoices_per_minute: Rate
    device_invoices_per_day: Rate


class Limits(ChannelLimits, frozen=True, kw_only=True):
    """The campaign's rate limits, and per-channel overrides of any of them."""

    channels: dict[str, dict[str, int | float]] = {}

    def of(self, channel: str) -> ChannelLimits:
        base = {f: getattr(self, f) for f in ChannelLimits.__struct_fields__}
        return msgspec.convert({**base, **self.channels.get(channel, {})}, ChannelLimits)


class Shedding(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    default_weight: Rate = 1.0
    weights: dict[str, Rate] = {}


class Dedup(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    expected_invoices: Positive
    false_positive_rate: Annotated[float, msgspec.Meta(gt=0, lt=1)]
    shards: Annotated[int, msgspec.Meta(ge=1, le=99)]  # two digits in the key names' hash tags


class Eligibility(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Rules judged on the verified data (the uploaded data was checked offline at the gateway)."""

    # Industries or tax classification codes eligible: a category matches an entry equal to it or, for a
    # code, starting with it. Empty: every category.
    categories: tuple[str, ...] = ()
    # Whether an invoice whose category neither the channel nor the tax service gave is eligible.
    unknown_category_eligible: bool = True
    # Invoice kinds never eligible: "on_behalf" (代开), "fixed_amount" (定额), "purchase" (收购).
    excluded_kinds: tuple[str, ...] = ("on_behalf", "fixed_amount", "purchase")
    buyer_must_be_person: bool = True


class Risk(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Risk rules: a hit is "held" for review with its reason, never dropped. A threshold of 0 turns its
    rule off. Counts are over the campaign's invoices accepted in the last ``window_days`` days."""

    blacklist: bool = True  # persons, devices and sellers in the blacklist table (gateway-worker blacklist)
    window_days: Annotated[float, msgspec.Meta(gt=0)] = 30.0
    device_max_persons: Count = 5  # one device used by more persons than this
    seller_min_invoices: Count = 50  # a seller with at least this many invoices ...
    seller_max_persons: Count = 5  # ... all going to at most this many persons
    high_value_fen: Count = 500_000  # invoices of at least this total ...
    high_value_burst: Count = 20  # ... more than this many from one seller within ...
    high_value_window_s: Seconds = 3600.0  # ... this many seconds
    seller_reversals: Count = 10  # a seller with more reversed invoices than this in the window
    # The upload's location, when the channel gives it, must be within this distance of the city (km).
    center_lat: Annotated[float, msgspec.Meta(ge=-90, le=90)] = 0.0
    center_lon: Annotated[float, msgspec.Meta(ge=-180, le=180)] = 0.0
    max_distance_km: Seconds = 0.0


class Campaign(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    id: str
    name: str
    starts: dt.date
    ends: dt.date
    seller_divisions: tuple[str, ...]
    invoice_provinces: tuple[str, ...]
    min_amount_fen: Count
    buyer_must_match_real_name: bool = True
    # Seconds an eligible invoice waits before it is sealed into the feed, so that reversals arrive first
    # (pilots hold payouts a few days); 0 for instant draws.
    payout_hold_s: Seconds = 0.0
    caps: Caps
    limits: Limits
    shedding: Shedding = Shedding()
    dedup: Dedup
    eligibility: Eligibility = Eligibility()
    risk: Risk = Risk()


def load(path: str | Path) -> Campaign:
    """Read and check a campaign file; a bad file fails at start (``ConfigError``), never on a request."""
    campaign, problems = read(path)
    if campaign is None or problems:
        where, what = problems[0]
        raise ConfigError(str(path), where, what)
    return campaign


def read(path: str | Path) -> tuple[Campaign | None, list[tuple[str, str]]]:
    """The campaign in ``path`` and every problem found in it, each as (where, what): the file's syntax and
    types first (the first problem stops there), then every rule that contradicts another."""
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except OSError as exc:
        return None, [("", f"cannot read the campaign file: {exc.strerror or exc}")]
    except tomllib.TOMLDecodeError as exc:
        what, _, where = str(exc).partition(" (at ")
        return None, [(where.rstrip(")"), f"not TOML: {what}")]
    try:
        campaign = msgspec.convert(raw, Campaign)
    except msgspec.ValidationError as exc:
        what, _, where = str(exc).partition(" - at `$.")
        return None, [(where.rstrip("`") or "(top)", what)]
    return campaign, contradictions(campaign)


def contradictions(c: Campaign) -> list[tuple[str, str]]:
    """Rules of a well-typed campaign that cannot all hold, or that no invoice could meet."""
    found: list[tuple[str, str]] = []
    if c.ends < c.starts:
        found.append(("ends", f"the campaign ends ({c.ends}) before it starts ({c.starts})"))
    if c.caps.person_daily > c.caps.person_monthly:
        found.append(("caps.person_daily", "more a day than person_monthly allows a month"))
    if c.caps.seller_person_monthly > c.caps.person_monthly:
        found.append(("caps.seller_person_monthly", "more from one seller than person_monthly allows in all"))
    try:
        zoneinfo.ZoneInfo(c.caps.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        found.append(("caps.timezone", f"unknown time zone {c.caps.timezone!r}"))
    if not c.seller_divisions or any(
        not (d.isascii() and d.isdigit() and 2 <= len(d) <= 6) for d in c.seller_divisions
    ):
        found.append(("seller_divisions", "one or more division code prefixes, 2 to 6 digits each"))
    if not c.invoice_provinces or any(not (p.isascii() and p.isdigit() and len(p) == 2) for p in c.invoice_provinces):
        found.append(("invoice_provinces", "one or more 2-digit province codes"))
    for kind in c.eligibility.excluded_kinds:
        if kind not in INVOICE_KINDS:
            found.append(("eligibility.excluded_kinds", f"{kind!r} is not one of {', '.join(INVOICE_KINDS)}"))
    if c.risk.max_distance_km > 0 and c.risk.center_lat == 0 and c.risk.center_lon == 0:
        found.append(("risk.max_distance_km", "a distance rule needs the city's center_lat and center_lon"))
    if c.risk.seller_min_invoices and c.risk.seller_max_persons >= c.risk.seller_min_invoices:
        found.append(("risk.seller_max_persons", "at least seller_min_invoices: the rule could never hold"))
    for channel in c.limits.channels:
        try:
            c.limits.of(channel)
        except msgspec.ValidationError as exc:
            what, _, where = str(exc).partition(" - at `$.")
            found.append((f"limits.channels.{channel}.{where.rstrip('`')}".rstrip("."), what))
    return found
