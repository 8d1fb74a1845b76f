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
