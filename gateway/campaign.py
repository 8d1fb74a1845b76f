"""A campaign's rules, read from its TOML file (deploy/campaigns/)."""

from __future__ import annotations

import datetime as dt
import tomllib
from pathlib import Path

import msgspec


class Caps(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    person_daily: int
    person_monthly: int
    seller_person_monthly: int
    timezone: str = "Asia/Shanghai"
    ineligible_returns_slot: bool = True


class ChannelLimits(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Rate limits of one channel (each a rate and, for the channel's, a burst)."""

    channel_requests_per_s: float
    channel_requests_burst: int
    channel_invoices_per_s: float
    channel_invoices_burst: int
    user_invoices_per_minute: float
    user_invoices_per_day: float
    device_invoices_per_minute: float
    device_invoices_per_day: float


class Limits(ChannelLimits, frozen=True, kw_only=True):
    """The campaign's rate limits, and per-channel overrides of any of them."""

    channels: dict[str, dict[str, int | float]] = {}

    def of(self, channel: str) -> ChannelLimits:
        base = {f: getattr(self, f) for f in ChannelLimits.__struct_fields__}
        return msgspec.convert({**base, **self.channels.get(channel, {})}, ChannelLimits)


class Shedding(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    default_weight: float = 1.0
    weights: dict[str, float] = {}


class Dedup(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    expected_invoices: int
    false_positive_rate: float
    shards: int


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
    window_days: float = 30.0
    device_max_persons: int = 5  # one device used by more persons than this
    seller_min_invoices: int = 50  # a seller with at least this many invoices ...
    seller_max_persons: int = 5  # ... all going to at most this many persons
    high_value_fen: int = 500_000  # invoices of at least this total ...
    high_value_burst: int = 20  # ... more than this many from one seller within ...
    high_value_window_s: float = 3600.0  # ... this many seconds
    seller_reversals: int = 10  # a seller with more reversed invoices than this in the window
    # The upload's location, when the channel gives it, must be within this distance of the city (km).
    center_lat: float = 0.0
    center_lon: float = 0.0
    max_distance_km: float = 0.0


class Campaign(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    id: str
    name: str
    starts: dt.date
    ends: dt.date
    seller_divisions: tuple[str, ...]
    invoice_provinces: tuple[str, ...]
    min_amount_fen: int
    buyer_must_match_real_name: bool = True
    # Seconds an eligible invoice waits before it is sealed into the feed, so that reversals arrive first
    # (pilots hold payouts a few days); 0 for instant draws.
    payout_hold_s: float = 0.0
    caps: Caps
    limits: Limits
    shedding: Shedding = Shedding()
    dedup: Dedup
    eligibility: Eligibility = Eligibility()
    risk: Risk = Risk()


def load(path: str | Path) -> Campaign:
    """Read and type-check a campaign file; a bad file fails loudly at start, never per request."""
    with open(path, "rb") as f:
        raw = tomllib.load(f)
    campaign = msgspec.convert(raw, Campaign)
    if campaign.ends < campaign.starts:
        raise ValueError(f"{path}: campaign ends before it starts")
    for channel in campaign.limits.channels:
        try:
            campaign.limits.of(channel)  # a bad override fails here, at start, never on a request
        except msgspec.ValidationError as exc:
            raise ValueError(f"{path}: [limits.channels.{channel}]: {exc}") from exc
    return campaign
