"""The shapes that cross the gateway: upload bodies as sent, and the invoice as queued for the workers."""

from __future__ import annotations

import decimal

import msgspec


class Location(msgspec.Struct, frozen=True):
    lat: float
    lon: float


class User(msgspec.Struct, frozen=True):
    id: str
    device_id: str
    real_name: str | None = None
    id_number: str | None = None
    location: Location | None = None


class Invoice(msgspec.Struct, frozen=True):
    """One invoice as a channel uploads it (SPEC.md, ``POST /v1/invoices``)."""

    number: str
    issue_date: str
    amount: decimal.Decimal
    seller_tax_id: str
    buyer_name: str
    user: User
    code: str | None = None
    seller_name: str | None = None
    check_code: str | None = None
    category: str | None = None


class Upload(msgspec.Struct, frozen=True):
    invoices: list[Invoice]


class RawUpload(msgspec.Struct, frozen=True):
    """The same body with each invoice left undecoded, so that one bad invoice rejects only itself."""

    invoices: list[msgspec.Raw]


class Queued(msgspec.Struct, frozen=True, array_like=True):
    """An accepted invoice as it travels through the stream to the workers.

    No personal data: the person, the user, the device and the buyer's name travel as keyed hashes.
    """

    key: str
    number: str
    code: str
    issue_date: str
    amount_fen: int
    seller_tax_id: str
    seller_name: str
    category: str
    check_code: str
    person: str
    user_ref: str
    device_ref: str
    buyer_ref: str
    channel: str
    accepted_at_ms: int
    distance_km: float = -1.0  # of the upload from the campaign's centre, when the channel gave a location


class Duplicate(msgspec.Struct, frozen=True, array_like=True):
    """A duplicate upload from another channel than the one whose upload was accepted."""

    key: str
    channel: str
    at_ms: int


class Entry(msgspec.Struct, frozen=True, array_like=True):
    """One stream entry: what one request added to the pipeline."""

    request_id: str
    accepted: list[Queued]
    duplicates: list[Duplicate]
