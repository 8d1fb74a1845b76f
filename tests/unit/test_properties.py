"""Property tests (Hypothesis): the validators, the canonical string, the chain, the GCRA arithmetic and the Bloom
sizing against oracles written here from their definitions (the standards, SPEC.md), not from the code under test.

Each draws a few hundred cases per run; ``HYPOTHESIS_PROFILE=long`` (``make fuzz``) draws thousands."""

from __future__ import annotations

import decimal
import hashlib
import hmac
import json
import math
import os
import random
import string
from fractions import Fraction
from typing import Any

import orjson
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from channel_client import signing as client_signing
from core import checks, feed
from core import signing as gateway_signing
from dedup import sizing
from gateway.parse import decode
from gateway.validate import Rejection, check
from loadtest import sample
from ratelimit import limits
from tests.unit.test_validate import CAMPAIGN, NOW_MS

settings.register_profile("short", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("long", max_examples=5000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "short"))

ASCII_DIGITS = "0123456789"
ODD_DIGITS = "٣３"  # Arabic-Indic three, fullwidth three: digits to str.isdigit, never to an invoice
# GB 32100-2015: the 31 characters are the digits and the capitals but I, O, S, V, Z.
USCC_ALPHABET = ASCII_DIGITS + "".join(c for c in string.ascii_uppercase if c not in "IOSVZ")


def reason(raw_invoice: bytes) -> str | None:
    """The rejection reason of one invoice given as raw JSON, None when it is queued."""
    item = decode(b'{"invoices":[' + raw_invoice + b"]}", False, 500, False)[0]
    result = item if isinstance(item, Rejection) else check(item, CAMPAIGN, "demo-channel", "k", NOW_MS, False)
    return result.reason if isinstance(result, Rejection) else None


def with_field(name: str, value: Any, base: dict[str, Any] | None = None) -> bytes:
    inv = dict(base or sample.invoice(random.Random(7), issue_date="2026-02-14"))
    inv[name] = value
    return orjson.dumps(inv)


def text_of(alphabet: str, max_size: int = 24) -> st.SearchStrategy[str]:
    return st.text(alphabet=alphabet, max_size=max_size)


# --- USCC and ID check characters -------------------------------------------------------------------------------


def uscc_oracle(code: str) -> bool:
    values = {c: i for i, c in enumerate(USCC_ALPHABET)}
    if len(code) != 18 or any(c not in values for c in code) or not all(c in ASCII_DIGITS for c in code[2:8]):
        return False
    total = sum(values[c] * pow(3, i, 31) for i, c in enumerate(code[:17]))  # the weights are 3^i mod 31
    return values[code[17]] == (31 - total % 31) % 31


@st.composite
def usccs(draw: Any) -> str:
    head = draw(text_of(USCC_ALPHABET, 2).filter(lambda t: len(t) == 2))
    division = draw(text_of(ASCII_DIGITS, 6).filter(lambda t: len(t) == 6))
    tail = draw(st.text(alphabet=USCC_ALPHABET, min_size=9, max_size=9))
    last = draw(st.sampled_from(USCC_ALPHABET))
    code = head + division + tail + last
    return draw(st.sampled_from([code, code[:17] + checks.uscc_check_char(code[:17])]))  # half valid


@given(st.one_of(usccs(), text_of(USCC_ALPHABET + "IOSVZa " + ODD_DIGITS, 19)))
def test_a_uscc_is_valid_exactly_when_its_check_character_says_so(code: str) -> None:
    assert (checks.uscc_problem(code) is None) == uscc_oracle(code)


def id_oracle(number: str) -> bool:
    """ISO 7064 MOD 11-2: with X as 10, the sum of each character times 2^(its distance from the right) is 1 mod 11."""
    if len(number) != 18 or any(c not in ASCII_DIGITS for c in number[:17]) or number[17] not in ASCII_DIGITS + "X":
        return False
    values = [int(c) if c != "X" else 10 for c in number]
    return sum(v * pow(2, 17 - i) for i, v in enumerate(values)) % 11 == 1


@st.composite
def id_numbers(draw: Any) -> str:
    first = draw(st.text(alphabet=ASCII_DIGITS, min_size=17, max_size=17))
    return first + draw(st.sampled_from(ASCII_DIGITS + "Xx" + ODD_DIGITS))


@given(st.one_of(id_numbers(), text_of(ASCII_DIGITS + "Xx" + ODD_DIGITS, 19)))
@example("11010519491231002X")
def test_an_id_number_is_valid_exactly_when_mod_11_2_says_so(number: str) -> None:
    assert (checks.id_number_problem(number) is None) == id_oracle(number)
    user = {"id": "u1", "device_id": "d1", "id_number": number}
    assert (reason(with_field("user", user)) == "invalid_id_number") != id_oracle(number)


# --- numbers, codes, check codes, dates, amounts ----------------------------------------------------------------


def ascii_digits(text: str, *sizes: int) -> bool:
    return len(text) in sizes and all(c in ASCII_DIGITS for c in text)


@given(
    st.one_of(
        text_of(ASCII_DIGITS + ODD_DIGITS + "a -", 22),
        st.just("26").flatmap(lambda p: text_of("0123", 18).map(p.__add__)),
    )
)
def test_a_digital_number_is_20_ascii_digits_starting_with_the_year(number: str) -> None:
    got = reason(with_field("number", number))
    if ascii_digits(number, 8):
        assert got == "missing_code"
    elif not ascii_digits(number, 20) or number[:2] != "26":
        assert got == "invalid_number"
    else:
        assert got not in ("invalid_number", "missing_code")


@given(text_of(ASCII_DIGITS + ODD_DIGITS + "x", 13), text_of(ASCII_DIGITS + ODD_DIGITS, 7))
def test_a_legacy_code_and_check_code_are_ascii_digits_of_their_lengths(code: str, check_code: str) -> None:
    legacy = sample.legacy_invoice(random.Random(3), issue_date="2026-02-14")
    valid_code = ascii_digits(code, 10) or (ascii_digits(code, 12) and code[0] in "01")
    assert (reason(with_field("code", code, legacy)) == "invalid_code") != valid_code
    assert (reason(with_field("check_code", check_code, legacy)) == "invalid_check_code") != ascii_digits(check_code, 6)


def calendar_date(text: str) -> bool:
    if len(text) != 10 or text[4] != "-" or text[7] != "-" or not ascii_digits(text[:4] + text[5:7] + text[8:], 8):
        return False
    year, month, day = int(text[:4]), int(text[5:7]), int(text[8:])
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    days = [31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
    return year >= 1 and 1 <= month <= 12 and 1 <= day <= days[month - 1]


@st.composite
def date_texts(draw: Any) -> str:
    y, m, d = draw(st.integers(0, 9999)), draw(st.integers(0, 13)), draw(st.integers(0, 32))
    return draw(st.sampled_from([f"{y:04d}-{m:02d}-{d:02d}", f"{y}-{m}-{d}", f"{y:04d}{m:02d}{d:02d}"]))


@given(st.one_of(date_texts(), text_of(ASCII_DIGITS + "-T:" + ODD_DIGITS, 12)))
@example("2024-02-29")
@example("2100-02-29")
def test_an_issue_date_is_a_calendar_date_written_yyyy_mm_dd(text: str) -> None:
    assert (reason(with_field("issue_date", text)) == "invalid_issue_date") != calendar_date(text)


def amount_oracle(text: str, is_number: bool) -> int | None:
    """The amount in fen, None when refused: a JSON number has any JSON form; a string is digits, optionally a
    point and digits; more than 0, under 100,000,000 yuan, whole fen."""
    whole, point, fraction = text.partition(".")
    if not is_number and not (
        ascii_digits(whole, *range(1, 40)) and (not point or ascii_digits(fraction, *range(1, 40)))
    ):
        return None
    value = decimal.Decimal(text)
    fen = value * 100
    if not 0 < value < 100_000_000 or fen != fen.to_integral_value():
        return None
    return int(fen)


def queued_fen(raw_invoice: bytes) -> int | None:
    item = decode(b'{"invoices":[' + raw_invoice + b"]}", False, 500, False)[0]
    result = item if isinstance(item, Rejection) else check(item, CAMPAIGN, "demo-channel", "k", NOW_MS, False)
    if isinstance(result, Rejection):
        return None if result.reason == "invalid_amount" else -1
    return result.amount_fen


def json_numbers() -> st.SearchStrategy[str]:
    mantissa = st.decimals(min_value=0, max_value=10**9, places=4, allow_nan=False, allow_infinity=False)
    exponent = st.sampled_from(["", "e0", "e2", "E-2", "e+1", "e-5", "e12", "e-30", "e400"])
    return st.tuples(mantissa, exponent).map(lambda t: f"{t[0]}{t[1]}").filter(lambda s: "E+" not in s.upper()[:-4])


@given(st.one_of(text_of(ASCII_DIGITS + ".-+e ", 16), st.decimals(0, 10**8, places=3).map(str)))
@example("128.500")
@example("0.001")
def test_an_amount_string_is_read_to_the_fen_or_refused(text: str) -> None:
    expected = amount_oracle(text, is_number=False)
    got = queued_fen(with_field("amount", text))
    assert got == expected or (got == -1 and expected is not None)  # -1: valid, refused later (the minimum)


@given(json_numbers())
@example("1e3")
@example("1.2345e2")
def test_an_amount_number_is_read_by_its_value_in_any_json_form(text: str) -> None:
    assume(decimal.Decimal(text).is_finite())
    raw = with_field("amount", "@").replace(b'"@"', text.encode())
    expected = amount_oracle(text, is_number=True)
    got = queued_fen(raw)
    assert got == expected or (got == -1 and expected is not None)


# --- the canonical string and the signature ---------------------------------------------------------------------


@given(
    st.sampled_from(["GET", "post", "Post"]),
    st.text(max_size=40).map(lambda t: "/v1/" + t),
    st.integers(0, 2**40).map(str),
    st.text(alphabet=string.hexdigits, max_size=40),
    st.binary(max_size=300),
    st.text(min_size=1, max_size=40),
)
def test_the_canonical_string_and_signature_are_spec_md_s(
    method: str, path: str, timestamp: str, nonce: str, body: bytes, secret: str
) -> None:
    lines = [method.upper(), path, timestamp, nonce, hashlib.sha256(body).hexdigest()]
    oracle = "\n".join(lines)
    assert gateway_signing.canonical_string(method, path, timestamp, nonce, body) == oracle
    assert client_signing.canonical_string(method, path, timestamp, nonce, body) == oracle
    signature = hmac.new(secret.encode(), oracle.encode(), "sha256").hexdigest()
    assert client_signing.sign(secret, oracle) == signature
    assert gateway_signing.signature_matches(secret, oracle, signature)
    assert not gateway_signing.signature_matches(secret + "x", oracle, signature)
    assert not gateway_signing.signature_matches(secret, oracle + "x", signature)


# --- the chain --------------------------------------------------------------------------------------------------

entries = st.builds(
    lambda kind, key, person, channel, fen, category: feed.entry(
        kind,
        key=key,
        person=person,
        channel=channel,
        amount_fen=fen,
        issue_date="2026-03-01",
        seller_tax_id="91340100MA2N0R2K2X",
        category=category,
        accepted_at="2026-03-01T08:00:00.000Z",
    ),
    st.sampled_from(["add", "void"]),
    st.text(max_size=24),
    st.text(alphabet=string.hexdigits, max_size=32),
    st.text(max_size=16),
    st.integers(0, 10**10),
    st.text(max_size=16),
)


@given(st.lists(st.lists(entries, min_size=1, max_size=4), min_size=1, max_size=5))
def test_the_chain_is_sha256_over_each_batch_and_its_predecessor(batches: list[list[dict[str, Any]]]) -> None:
    prev = feed.GENESIS
    for batch in batches:
        texts = [json.dumps(e, sort_keys=True, separators=(",", ":"), ensure_ascii=False) for e in batch]
        assert [feed.text(e) for e in batch] == texts
        oracle = hashlib.sha256(b"\n".join(t.encode() for t in (prev, *texts))).hexdigest()
        assert feed.batch_sha256(prev, texts) == oracle
        if len(texts) > 1:  # the order is part of the hash
            assert texts[0] == texts[-1] or feed.batch_sha256(prev, texts[::-1]) != oracle
        prev = oracle


# --- GCRA arithmetic --------------------------------------------------------------------------------------------


def lua_gcra(tat: float, now: int, interval: float, tolerance: float) -> tuple[bool, float]:
    """limits.lua's gcra() for a cost of 1, in the doubles Lua computes with."""
    base = max(tat, now)
    new_tat = base + interval
    wait = new_tat - now - tolerance - interval
    return (False, tat) if wait > limits.GCRA_SLACK_MS else (True, new_tat)


@given(
    st.integers(1, 10_000).flatmap(lambda n: st.sampled_from([(n, 1000), (n, 60_000), (n, 86_400_000)])),
    st.integers(1, 40),
    st.lists(st.integers(0, 5000), max_size=80),
    st.integers(1_700_000_000_000, 2_000_000_000_000),
)
@example((3, 1000), 1, [0, 333, 1, 333, 334], 1_796_083_200_123)
def test_gcra_in_doubles_decides_as_the_exact_definition(
    limit: tuple[int, int], burst: int, gaps_ms: list[int], start_ms: int
) -> None:
    """Exact rational arithmetic (the ITU definition) against the script's doubles at today's clock (ms since 1970,
    a 2^-12 ms grain): the same answer for every request, the burst included, but within the slack of the edge."""
    count, window_ms = limit
    interval, tolerance = limits.gcra(count, window_ms, burst)
    exact_t = Fraction(window_ms, count)
    exact_tau = (burst - 1) * exact_t
    tat, exact_tat, now = 0.0, Fraction(0), start_ms
    for gap in [0] * burst + gaps_ms:
        now += gap
        allowed, tat = lua_gcra(tat, now, interval, tolerance)
        exact_wait = max(exact_tat, now) + exact_t - now - exact_tau - exact_t
        if allowed:
            exact_tat = max(exact_tat, now) + exact_t
        if exact_wait <= 0 or exact_wait > 2 * limits.GCRA_SLACK_MS:
            assert allowed == (exact_wait <= 0), float(exact_wait)


# --- Bloom sizing -----------------------------------------------------------------------------------------------


@given(st.floats(4, 64), st.integers(2, sizing.MAX_K))
def test_a_blocked_filter_is_never_better_than_a_classic_one_and_improves_with_bits(bits: float, k: int) -> None:
    fpr = sizing.false_positive_rate(bits, k)
    classic = (1 - math.exp(-k / bits)) ** k
    assume(classic < 0.05)  # near saturation (1 to 4 bits a key) uneven blocks can do better: no filter sized here
    assert classic * (1 - 1e-9) <= fpr <= 1
    assert sizing.false_positive_rate(bits * 1.5, k) <= fpr


@given(st.integers(1, 10**9), st.floats(1e-6, 0.2))
def test_a_sized_filter_reaches_its_target_with_the_fewest_bits_of_any_k(capacity: int, target: float) -> None:
    k, blocks = sizing.size(capacity, target)
    bits = blocks * sizing.BLOCK_BITS / capacity
    assert sizing.false_positive_rate(bits, k) <= target * (1 + 1e-6)
    for other in range(2, sizing.MAX_K + 1):  # no k does it in fewer bits (past rounding to whole blocks)
        fewer = bits - (sizing.BLOCK_BITS + 1) / capacity - 1e-6 * bits
        assert fewer <= 1 or sizing.false_positive_rate(fewer, other) > target * (1 - 1e-6) or other == k
