"""A campaign's rules, read from its TOML file (deploy/campaigns/)."""

from __future__ import annotations

import datetime as dt
import tomllib
from pathlib import Path

import msgspec


class Caps(msgspec.Struct, frozen=True, kw_only=True):
    person_daily: int
    person_monthly: int
    seller_person_monthly: int


class Dedup(msgspec.Struct, frozen=True, kw_only=True):
    expected_invoices: int
    false_positive_rate: float
    shards: int


class Campaign(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    starts: dt.date
    ends: dt.date
    seller_divisions: tuple[str, ...]
    invoice_provinces: tuple[str, ...]
    min_amount_fen: int
    buyer_must_match_real_name: bool = True
    caps: Caps
    dedup: Dedup


def load(path: str | Path) -> Campaign:
    """Read and type-check a campaign file; a bad file fails loudly at start, never per request."""
    with open(path, "rb") as f:
        raw = tomllib.load(f)
    campaign = msgspec.convert(raw, Campaign)
    if campaign.ends < campaign.starts:
        raise ValueError(f"{path}: campaign ends before it starts")
    return campaign
