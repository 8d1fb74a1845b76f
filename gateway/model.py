"""The upload body as a channel sends it (SPEC.md, ``POST /v1/invoices``). The invoice as queued for the workers
is the stream's contract, core/contract.py."""

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
