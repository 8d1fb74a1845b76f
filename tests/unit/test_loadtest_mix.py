"""The load test's invoice mix and evening shape: what counts as a wrong answer, and the users over time."""

from __future__ import annotations

import random

from loadtest.evening import users_at
from loadtest.mix import Mix, Planned, Recent, wrong_answers


def _planned(kind: str, statuses: set[str], reason: str | None = None) -> Planned:
    return Planned(kind, {}, frozenset(statuses), reason)


def test_resent_invoice_answered_accepted_is_a_wrong_answer() -> None:
    dup = _planned("duplicate", {"duplicate", "rate_limited", "rejected"})
    assert wrong_answers([dup], [{"status": "duplicate"}]) == []
    assert wrong_answers([dup], [{"status": "accepted"}]) == ["duplicate invoice answered accepted"]


def test_broken_invoice_must_be_rejected_for_its_own_reason() -> None:
    broken = _planned("broken", {"rejected"}, "invalid_seller_tax_id")
    assert wrong_answers([broken], [{"status": "rejected", "reason": "invalid_seller_tax_id"}]) == []
    assert wrong_answers([broken], [{"status": "rejected", "reason": "invalid_amount"}])
    assert wrong_answers([broken], [{"status": "accepted"}])


def test_valid_invoice_may_be_capped_but_not_rejected_otherwise() -> None:
    valid = _planned("valid", {"accepted", "rate_limited", "rejected"})
    assert wrong_answers([valid], [{"status": "rejected", "reason": "person_daily_cap"}]) == []
    assert wrong_answers([valid], [{"status": "rejected", "reason": "invalid_number"}])
    assert wrong_answers([valid, valid], [{"status": "accepted"}]) == ["1 results for 2 invoices"]


def test_duplicates_come_from_another_channel() -> None:
    recent = Recent()
    mix = Mix(random.Random(1), recent)
    recent.add("demo-channel", {"number": "x"})
    assert recent.other_than("demo-channel", mix.rng) is None
    assert recent.other_than("demo-channel-2", mix.rng) == {"number": "x"}
    kinds = {mix.draw("demo-channel-2").kind for _ in range(2000)}
    assert kinds == {"valid", "legacy", "sandbox", "duplicate", "broken", "capped", "farm"}


def test_evening_ramps_peaks_holds_and_drops_then_ends() -> None:
    users = [users_at(t / 100, 100) for t in range(100)]
    assert users[0] == 10 and users[24] < users[25] == 100 == users[39]
    assert users[40] == 60 == users[79] and users[80] == 15 == users[99]
    assert users_at(1.0, 100) is None
    assert users_at(0.0, 3) == 2  # never fewer than a channel and the draw service
