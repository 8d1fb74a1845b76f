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


def test_fresh_legacy_invoices_do_not_meet_each_other() -> None:
    """An evening's legacy invoices must not collide by chance: the gateway is right to answer a second one
    ``duplicate``, and the scenario would call that a wrong answer. 20,000 keys from the old space (one fixed
    code, about 10^8 numbers) hold two collisions with this seed; from today's (about 10^11), none."""
    from loadtest.sample import legacy_invoice

    rng = random.Random(19)
    keys = [(inv["code"], inv["number"]) for inv in (legacy_invoice(rng) for _ in range(20_000))]
    assert len(set(keys)) == len(keys)
    assert len({code for code, _ in keys}) > 900  # the batch digits vary
