"""The upload body as a channel sends it (SPEC.md, ``POST /v1/invoices``). The invoice as queued for the workers
is the stream's contract, core/contract.py.

A member an object does not define is refused (``unknown_field``: a misspelt ``real_name`` must not silently
skip the buyer-name check), unless the campaign's ``[uploads] unknown_fields = "ignore"`` picks the lenient
shapes below, which drop such members. ``amount`` is kept as its raw text, so that gateway/rules.py can tell a
decimal string (``"1e3"`` is refused) from a JSON number (``1e3`` is 1000, as SPEC.md takes any JSON number).
"""

from __future__ import annotations

from typing import Annotated

import msgspec

AMOUNT_PATTERN = r"^[0-9]+(\.[0-9]+)?$"
USCC_PATTERN = "^[0-9A-HJ-NP-RTUWXY]{2}[0-9]{6}[0-9A-HJ-NP-RTUWXY]{10}$"
Amount = Annotated[
    msgspec.Raw,
    msgspec.Meta(
        description="Total incl. tax (价税合计) in yuan, more than 0, at most 2 decimals (trailing zeros aside): a"
        " decimal string (digits with an optional point: no sign, exponent or spaces) or a JSON number.",
        extra_json_schema={
            "oneOf": [
                {"type": "string", "pattern": AMOUNT_PATTERN, "examples": ["128.50"]},
                {"type": "number", "exclusiveMinimum": 0},
            ]
        },
    ),
]


def shown(description: str = "", **schema: object) -> msgspec.Meta:
    """What the OpenAPI document says of a field, never enforced by the decoder: an invoice that breaks it is
    answered in the 202 as ``rejected`` with its rule's reason code (gateway/rules.py), not refused whole."""
    return msgspec.Meta(description=description or None, extra_json_schema=schema)


Text = Annotated[str, shown(maxLength=200)]


class Location(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    lat: Annotated[float, shown(minimum=-90, maximum=90)]
    lon: Annotated[float, shown(minimum=-180, maximum=180)]


class User(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The uploading consumer, as the channel knows them."""

    id: Annotated[str, shown("the channel's id of the consumer", minLength=1, maxLength=200)]
    device_id: Annotated[str, shown("the channel's id of the consumer's device", minLength=1, maxLength=200)]
    real_name: (
        Annotated[str, shown("the channel's real-name-verified name, to match buyer_name", maxLength=200)] | None
    ) = None
    id_number: (
        Annotated[str, shown("18-character resident ID (check digit ISO 7064 MOD 11-2)", pattern="^[0-9]{17}[0-9X]$")]
        | None
    ) = None
    location: Location | None = None


class Invoice(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One invoice as a channel uploads it (SPEC.md, ``POST /v1/invoices``; the rules: docs/rules.md)."""

    number: Annotated[
        str, shown("20 digits (digital invoice), or 8 with code (legacy)", pattern="^([0-9]{20}|[0-9]{8})$")
    ]
    issue_date: Annotated[str, shown("YYYY-MM-DD", format="date", pattern="^[0-9]{4}-[0-9]{2}-[0-9]{2}$")]
    amount: Amount
    seller_tax_id: Annotated[str, shown("USCC with its check character (GB 32100-2015)", pattern=USCC_PATTERN)]
    buyer_name: Annotated[str, shown("the natural person named as buyer (trimmed, NFKC)", minLength=1, maxLength=200)]
    user: User
    code: Annotated[str, shown("legacy invoices: 发票代码", pattern="^([0-9]{10}|[01][0-9]{11})$")] | None = None
    seller_name: Text | None = None
    check_code: Annotated[str, shown("legacy invoices: last 6 digits of 校验码", pattern="^[0-9]{6}$")] | None = None
    category: Annotated[str, shown("tax classification code or industry of the main item", maxLength=200)] | None = None


class Upload(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    invoices: list[Invoice]


class RawUpload(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The same body with each invoice left undecoded, so that one bad invoice rejects only itself."""

    invoices: list[msgspec.Raw]


# The lenient shapes (campaign [uploads] unknown_fields = "ignore"): members they do not define are dropped.
class LenientLocation(Location, frozen=True, forbid_unknown_fields=False):
    pass


class LenientUser(User, frozen=True, forbid_unknown_fields=False):
    location: LenientLocation | None = None


class LenientInvoice(Invoice, frozen=True, forbid_unknown_fields=False):
    user: LenientUser


class LenientUpload(msgspec.Struct, frozen=True):
    invoices: list[LenientInvoice]


class LenientRawUpload(msgspec.Struct, frozen=True):
    invoices: list[msgspec.Raw]
