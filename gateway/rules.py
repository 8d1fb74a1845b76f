"""The offline rules of an uploaded invoice, as one table (field, rule, reason code, example): gateway/validate.py
applies it, row by row, the first broken row giving the invoice's ``rejected`` reason; docs/rules.md is generated
from it (``page``), and the OpenAPI document's reason codes too (gateway/openapi.py).

Rows whose ``test`` is None are the decoder's (gateway/parse.py: the invoice's shape and unknown members); the
others run in order, each seeing what the earlier ones established (a date that parses, an amount that reads).

Names are compared and hashed trimmed and in Unicode NFKC (``core.hashing.normal_name``): a name already in that
form hashes as it did before the rule existed.
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
from collections.abc import Callable
from dataclasses import dataclass

import msgspec

from core import checks
from core.campaign import Campaign
from core.hashing import normal_name
from gateway.model import Invoice

DIGITAL_NUMBER = re.compile(r"[0-9]{20}")
LEGACY_NUMBER = re.compile(r"[0-9]{8}")
LEGACY_CODE = re.compile(r"[0-9]{10}|[01][0-9]{11}")
CHECK_CODE = re.compile(r"[0-9]{6}")
ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
AMOUNT_TEXT = re.compile(r"([0-9]+)(?:\.([0-9]+))?")
MAX_YUAN = 100_000_000  # no consumer invoice comes near; guards the fen integer
MAX_TEXT = 200
JSON_STRING = msgspec.json.Decoder(str)
MSGPACK_SCALAR = msgspec.msgpack.Decoder(str | int | float)


class Subject:
    """One invoice under the rules: the terms it is judged by, and what the rules established so far."""

    __slots__ = ("buyer", "campaign", "fen", "fraction", "inv", "issued", "msgpack", "today", "yuan")

    def __init__(self, inv: Invoice, campaign: Campaign, today: dt.date, msgpack: bool) -> None:
        self.inv = inv
        self.campaign = campaign
        self.today = today
        self.msgpack = msgpack
        self.yuan, self.fraction, self.fen = 0, "", 0  # the amount as written, once its rule has read it
        self.issued = today
        self.buyer = ""  # the buyer's name normalised (core.hashing.normal_name), once its rule has run


Test = Callable[[Subject], str | None]  # the detail of a broken rule, None when it holds


@dataclass(frozen=True)
class Rule:
    field: str
    rule: str
    reason: str
    example: str  # a value that breaks the rule, as the JSON member a channel would send
    test: Test | None  # None: the decoder's rule (gateway/parse.py)


def _digits(text: str, n: int) -> bool:
    """Exactly ``n`` ASCII digits (``str.isdigit`` alone also takes other scripts' digits)."""
    return len(text) == n and text.isascii() and text.isdigit()


def _digital_number(s: Subject) -> str | None:
    number = s.inv.number
    if s.inv.code is None and not _digits(number, 20) and not _digits(number, 8):
        return "20 digits for a digital invoice, 8 digits for a legacy one"
    return None


def _legacy_needs_code(s: Subject) -> str | None:
    if s.inv.code is None and _digits(s.inv.number, 8):
        return "an 8-digit legacy invoice number needs its 10- or 12-digit code"
    return None


def _legacy_number(s: Subject) -> str | None:
    if s.inv.code is not None and not LEGACY_NUMBER.fullmatch(s.inv.number):
        return "a legacy invoice number (with a code) is 8 digits"
    return None


def _legacy_code(s: Subject) -> str | None:
    if s.inv.code is not None and not LEGACY_CODE.fullmatch(s.inv.code):
        return "10 digits, or 12 digits starting with 0 or 1"
    return None


def _check_code(s: Subject) -> str | None:
    if s.inv.check_code is not None and not CHECK_CODE.fullmatch(s.inv.check_code):
        return "the last 6 digits of the check code"
    return None


def _iso_date(s: Subject) -> str | None:
    if not ISO_DATE.fullmatch(s.inv.issue_date):
        return "YYYY-MM-DD"
    try:
        s.issued = dt.date.fromisoformat(s.inv.issue_date)
    except ValueError:
        return "not a calendar date"
    return None


def _year_digits(s: Subject) -> str | None:
    if s.inv.code is None and s.inv.number[:2] != s.inv.issue_date[2:4]:
        return "the number's year digits differ from the issue date's year"
    return None


def _not_in_future(s: Subject) -> str | None:
    if s.issued > s.today and not s.campaign.uploads.future_issue_dates:
        return f"issued after today ({s.today}) in the campaign's time zone"
    return None


def _amount_text(s: Subject) -> str | None:
    text, number = _amount_as_text(s.inv.amount, s.msgpack)
    if text is not None and number and not AMOUNT_TEXT.fullmatch(text):
        text = _plain(text)  # a number written with an exponent (SPEC.md takes any JSON number): its value
    m = None if text is None else AMOUNT_TEXT.fullmatch(text)
    if m is None:
        return "a decimal string of digits with an optional point (no sign, exponent or spaces), or a number > 0"
    whole = m[1].lstrip("0")
    s.yuan = int(whole or "0") if len(whole) <= 12 else MAX_YUAN  # longer is implausible: no huge int is made
    s.fraction = m[2] or ""
    s.fen = s.yuan * 100 + int((s.fraction + "00")[:2])
    return None


def _amount_as_text(raw: msgspec.Raw, msgpack: bool) -> tuple[str | None, bool]:
    """The amount as written, and whether it is a number: a JSON number's own text, a string's content;
    msgpack's int, or a float's shortest round-trip text (``repr``). None for any other type."""
    data = bytes(raw)
    if not msgpack and data[:1] == b'"' and b"\\" not in data:
        return data[1:-1].decode(), False  # a string without escapes: its content is between the quotes
    try:
        if msgpack:
            value = MSGPACK_SCALAR.decode(data)
            return (value, False) if isinstance(value, str) else (repr(value), True)
        if data[:1] == b'"':
            return JSON_STRING.decode(data), False
        return data.decode("ascii"), True
    except (msgspec.DecodeError, UnicodeDecodeError):
        return None, False


def _plain(text: str) -> str | None:
    """A number's value in plain digits (``1e3`` is ``1000``, ``1.2345e2`` is ``123.45``); None when it is no
    number, or negative. Far beyond any amount or any cent, a stand-in that the next rules refuse: no huge
    string is ever made."""
    try:
        value = decimal.Decimal(text)
    except decimal.InvalidOperation:
        return None
    if not value.is_finite() or value.is_signed():
        return None
    value = value.normalize()
    if value.adjusted() > 12:
        return str(MAX_YUAN)
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -12:
        return "0.001"
    return format(value, "f")


def _amount_positive(s: Subject) -> str | None:
    return "more than 0" if s.yuan == 0 and not s.fraction.strip("0") else None


def _amount_plausible(s: Subject) -> str | None:
    return f"less than {MAX_YUAN:,} yuan" if s.yuan >= MAX_YUAN else None


def _amount_cents(s: Subject) -> str | None:
    return "at most 2 decimals" if s.fraction[2:].strip("0") else None


def _seller_tax_id(s: Subject) -> str | None:
    return checks.uscc_problem(s.inv.seller_tax_id)


def _buyer_name(s: Subject) -> str | None:
    s.buyer = normal_name(s.inv.buyer_name)
    if not 1 <= len(s.buyer) <= MAX_TEXT:
        return "the buyer's name, 1 to 200 characters once trimmed"
    return None


def _user(s: Subject) -> str | None:
    user = s.inv.user
    if not user.id or not user.device_id or len(user.id) > MAX_TEXT or len(user.device_id) > MAX_TEXT:
        return "user.id and user.device_id, 1 to 200 characters each"
    return None


def _id_number(s: Subject) -> str | None:
    number = s.inv.user.id_number
    return None if number is None else checks.id_number_problem(number)


def _location(s: Subject) -> str | None:
    loc = s.inv.user.location
    if loc is not None and not (-90 <= loc.lat <= 90 and -180 <= loc.lon <= 180):
        return "lat in [-90, 90], lon in [-180, 180]"
    return None


def _text(s: Subject) -> str | None:
    for text in (s.inv.seller_name, s.inv.category, s.inv.user.real_name):
        # NUL: PostgreSQL's text holds none, and the sink's COPY of the invoice's batch would fail on it
        if text is not None and (len(text) > MAX_TEXT or "\x00" in text):
            return "seller_name, category and user.real_name are at most 200 characters, none of them NUL"
    return None


def _window(s: Subject) -> str | None:
    c = s.campaign
    return None if c.starts <= s.issued <= c.ends else f"issued outside {c.starts} to {c.ends}"


def province(number: str, code: str | None) -> str:
    """Province digits: 3-4 of a digital number; the area's first two of a legacy code (after a 12-digit
    code's leading 0 or 1)."""
    if code is None:
        return number[2:4]
    return code[:2] if len(code) == 10 else code[1:3]


def _invoice_region(s: Subject) -> str | None:
    if province(s.inv.number, s.inv.code) not in s.campaign.invoice_provinces:
        return "the invoice was issued in another province"
    return None


def _seller_region(s: Subject) -> str | None:
    if not checks.uscc_division(s.inv.seller_tax_id).startswith(s.campaign.seller_divisions):
        return "the seller is not registered in the campaign's city"
    return None


def _minimum(s: Subject) -> str | None:
    floor = s.campaign.min_amount_fen
    return f"the total must be at least {floor / 100:.2f}" if s.fen < floor else None


def _real_name(s: Subject) -> str | None:
    real_name = s.inv.user.real_name
    if not s.campaign.buyer_must_match_real_name or real_name is None:
        return None
    if normal_name(real_name) != s.buyer:
        return "the buyer is not the channel's real-name-verified user"
    return None


TABLE: tuple[Rule, ...] = (
    Rule(
        "(invoice)",
        "an object with every required member, each of its type (strings are strings, `user` an object)",
        "invalid_shape",
        '{"number": 26341000000000000123}',
        None,
    ),
    Rule(
        "(any object)",
        "no member the invoice, `user` or `user.location` does not define (campaign `[uploads] unknown_fields`:"
        ' "refuse", the default, or "ignore" to drop them)',
        "unknown_field",
        '"user": {"id": "u1", "device_id": "d1", "real_nme": "张三"}',
        None,
    ),
    Rule(
        "number",
        "20 digits (digital invoice) or 8 digits (legacy)",
        "invalid_number",
        '"number": "12345"',
        _digital_number,
    ),
    Rule(
        "number",
        "an 8-digit (legacy) number comes with its `code`",
        "missing_code",
        '"number": "12345678"',
        _legacy_needs_code,
    ),
    Rule(
        "number", "with a `code`, 8 digits", "invalid_number", '"code": "034012600111", "number": "123"', _legacy_number
    ),
    Rule("code", "10 digits, or 12 digits starting with 0 or 1", "invalid_code", '"code": "123"', _legacy_code),
    Rule("check_code", "6 digits (the last 6 of 校验码)", "invalid_check_code", '"check_code": "12ab"', _check_code),
    Rule("issue_date", "`YYYY-MM-DD`, a calendar date", "invalid_issue_date", '"issue_date": "2026-02-30"', _iso_date),
    Rule(
        "number",
        "a digital invoice's first two digits are its issue year's last two (`26...` for 2026)",
        "invalid_number",
        '"number": "2634...", "issue_date": "2025-12-31"',
        _year_digits,
    ),
    Rule(
        "issue_date",
        "not after today in the campaign's time zone (`[caps] timezone`), unless the campaign sets"
        " `[uploads] future_issue_dates = true` (the dev sandbox does)",
        "issue_date_in_future",
        '"issue_date": "<tomorrow>"',
        _not_in_future,
    ),
    Rule(
        "amount",
        "yuan as a decimal string (digits, optionally a point and digits: no sign, exponent or spaces) or a JSON"
        " number (any form JSON allows: `1e3` is 1000); msgpack: a string, an integer or a float (read by its"
        " shortest text)",
        "invalid_amount",
        '"amount": "1e3"',
        _amount_text,
    ),
    Rule("amount", "more than 0", "invalid_amount", '"amount": "0.00"', _amount_positive),
    Rule("amount", "less than 100,000,000 yuan", "invalid_amount", '"amount": "100000000"', _amount_plausible),
    Rule(
        "amount",
        "at most 2 decimals (trailing zeros aside: `128.500` is 128.50)",
        "invalid_amount",
        '"amount": "12.345"',
        _amount_cents,
    ),
    Rule(
        "seller_tax_id",
        "18 characters of the USCC alphabet with a valid check character (GB 32100-2015)",
        "invalid_seller_tax_id",
        '"seller_tax_id": "91340104MA1W0556X0"',
        _seller_tax_id,
    ),
    Rule(
        "buyer_name",
        "1 to 200 characters once trimmed and NFKC-normalised",
        "invalid_buyer_name",
        '"buyer_name": "  "',
        _buyer_name,
    ),
    Rule(
        "user.id, user.device_id",
        "1 to 200 characters each",
        "invalid_user",
        '"user": {"id": "", "device_id": "d1"}',
        _user,
    ),
    Rule(
        "user.id_number",
        "17 digits and a check character (ISO 7064 MOD 11-2, `X` upper case)",
        "invalid_id_number",
        '"id_number": "110105194912310021"',
        _id_number,
    ),
    Rule(
        "user.location",
        "`lat` in [-90, 90], `lon` in [-180, 180]",
        "invalid_location",
        '"location": {"lat": 91, "lon": 0}',
        _location,
    ),
    Rule(
        "seller_name, category, user.real_name",
        "at most 200 characters, none of them NUL (U+0000)",
        "invalid_text",
        '"category": "<201 characters>"',
        _text,
    ),
    Rule(
        "issue_date",
        "within the campaign's window (`starts` to `ends`, both included)",
        "outside_campaign_window",
        '"issue_date": "2025-12-31"',
        _window,
    ),
    Rule(
        "number, code",
        "issued in a campaign province (`invoice_provinces`: digits 3-4 of a digital number, the area of a code)",
        "invoice_outside_region",
        '"number": "2642..."',
        _invoice_region,
    ),
    Rule(
        "seller_tax_id",
        "a seller registered in the campaign's city (division code, characters 3-8, starts with `seller_divisions`)",
        "seller_outside_region",
        '"seller_tax_id": "91420102..."',
        _seller_region,
    ),
    Rule("amount", "at least the campaign's `min_amount_fen`", "below_minimum_amount", '"amount": "99.99"', _minimum),
    Rule(
        "buyer_name",
        "equal to `user.real_name` when that is given (both trimmed and NFKC-normalised; campaign"
        " `buyer_must_match_real_name`)",
        "buyer_name_mismatch",
        '"buyer_name": "李四", "user": {"real_name": "张三", ...}',
        _real_name,
    ),
)
APPLIED = tuple((rule.reason, rule.test) for rule in TABLE if rule.test is not None)
REASONS = tuple(dict.fromkeys(rule.reason for rule in TABLE))  # every reason code of the table, in order
AMOUNT_READ = tuple(test for reason, test in APPLIED if reason == "invalid_amount")  # in order: the first reads it


def first_broken(subject: Subject) -> tuple[str, str] | None:
    """The reason code and detail of the first rule ``subject`` breaks, in table order; None when all hold."""
    for reason, test in APPLIED:
        detail = test(subject)
        if detail is not None:
            return reason, detail
    return None


def amount_fen(inv: Invoice, campaign: Campaign, msgpack: bool) -> int:
    """The invoice's amount in fen when it is a valid figure (its ``invalid_amount`` rows hold), else 0: what the
    daily reports count as received, whatever other rule the invoice breaks."""
    subject = Subject(inv, campaign, dt.date.min, msgpack)  # the amount's rows read no date
    return subject.fen if all(test(subject) is None for test in AMOUNT_READ) else 0
