"""The tally a request carries to the workers: what the gateway decided before the claim, and what the claim
script decided per invoice, read back into rows the rollups add."""

from __future__ import annotations

import msgspec
import orjson

from core import campaign as campaigns
from core import contract
from core.campaign import Eligibility
from gateway.model import Invoice, User
from gateway.tally import pre_claim
from gateway.validate import Rejection

ENTRY = {contract.REQUEST: b"req-1", contract.CHANNEL: b"ch1", contract.AT: b"1772380800000"}
RULES = Eligibility(categories=("retail", "catering"))
CAMPAIGN = msgspec.structs.replace(campaigns.load("deploy/campaigns/hefei-2026.toml"), eligibility=RULES)


def invoice(amount: str | float, category: str | None) -> Invoice:
    """An invoice as the decoder leaves it: its amount the member's raw JSON text (gateway/model.py)."""
    user = User("u1", "d1")
    raw = msgspec.Raw(orjson.dumps(amount))
    return Invoice("26341000000000000123", "2026-03-01", raw, "x", "张三", user, category=category)


def test_outcome_characters_become_rows_and_a_force_call_corrects_a_maybe() -> None:
    fields = {
        **ENTRY,
        contract.MODE: b"check",
        contract.OUTCOMES: b"aadm",
        contract.INDUSTRIES: contract.pack_names(["catering", "catering", "other", "retail"]),
    }
    (part,) = contract.read_tallies(fields, shard=3)
    assert (part.request, part.part, part.channel, part.at_ms) == ("req-1", "check:3", "ch1", 1772380800000)
    assert sorted(part.rows) == [
        ("accepted", "", "catering", 2, 0),
        ("duplicate", "", "other", 1, 0),
        ("duplicate", "", "retail", 1, 0),
    ]
    forced = {
        **ENTRY,
        contract.MODE: b"force",
        contract.OUTCOMES: b"AD",
        contract.INDUSTRIES: contract.pack_names(["retail", "other"]),
    }
    (fix,) = contract.read_tallies(forced, shard=3)
    assert fix.part == "force:3"
    assert sorted(fix.rows) == [("accepted", "", "retail", 1, 0), ("duplicate", "", "retail", -1, 0)]


def test_an_entry_of_an_older_gateway_carries_no_tally_and_a_broken_one_is_refused() -> None:
    assert contract.read_tallies(dict(ENTRY), shard=0) == []
    broken = {
        **ENTRY,
        contract.MODE: b"check",
        contract.OUTCOMES: b"aa",
        contract.INDUSTRIES: contract.pack_names(["x"]),
    }
    try:
        contract.read_tallies(broken, shard=0)
    except ValueError:
        return
    raise AssertionError("outcomes and industries of different lengths must be refused")


def test_the_gateway_counts_what_it_decided_before_the_claim() -> None:
    items: list[Invoice | Rejection] = [
        invoice("128.50", "catering"),  # going on to the claim
        invoice("12.345", "retail"),  # rejected: its amount is no valid figure, so it adds no amount
        Rejection("invalid_shape", "no"),
        invoice("100.00", "零售"),  # capped
        invoice(2e2, None),  # rate limited (a JSON number, as SPEC.md allows)
        invoice("128.50", "catering"),  # the same key again in the request
    ]
    results = {
        1: {"index": 1, "status": "rejected", "reason": "invalid_amount"},
        2: {"index": 2, "status": "rejected", "reason": "invalid_shape"},
        3: {"index": 3, "status": "rejected", "reason": "person_daily_cap"},
        4: {"index": 4, "status": "rate_limited", "retry_after": 3},
        5: {"index": 5, "status": "duplicate"},
    }
    packed, industries = pre_claim(items, results, CAMPAIGN, msgpack=False)
    assert industries == ["catering", "retail", "other", "other", "other", "catering"]
    rows = sorted(msgspec.msgpack.decode(packed, type=list[tuple[str, str, str, int, int]]))
    assert rows == [
        ("capped", "person_daily_cap", "other", 1, 0),
        ("duplicate", "", "catering", 1, 0),
        ("rate_limited", "", "other", 1, 0),
        ("received", "", "catering", 2, 25700),
        ("received", "", "other", 3, 30000),
        ("received", "", "retail", 1, 0),
        ("rejected", "invalid_amount", "retail", 1, 0),
        ("rejected", "invalid_shape", "other", 1, 0),
    ]
    # The amounts validation read already (the invoices that passed it) are taken as they are, not read again.
    read = {0: 12850, 3: 10000, 4: 20000}
    assert pre_claim(items, results, CAMPAIGN, msgpack=False, valid_fen=read)[0] == packed
    assert pre_claim(items, results, CAMPAIGN, msgpack=False, valid_fen={0: 1})[0] != packed
