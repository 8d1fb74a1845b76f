"""What the rollups need of a campaign: its days (time zone) and industries (eligible categories), and the
sums of one transaction's deltas."""

from __future__ import annotations

import datetime as dt

from core import campaign as campaigns
from core import rollup
from core.rollup import Deltas, Rollup

CAMPAIGN = campaigns.load("deploy/campaigns/hefei-2026.toml")


def test_days_are_the_campaigns_not_utcs() -> None:
    r = Rollup.of(CAMPAIGN)
    late_utc = dt.datetime(2026, 3, 31, 16, 30, tzinfo=dt.UTC)  # 00:30 on 1 April in Shanghai
    assert r.day(late_utc) == dt.date(2026, 4, 1)
    assert r.day_of_ms(int(late_utc.timestamp() * 1000)) == dt.date(2026, 4, 1)
    start, end = r.window(dt.date(2026, 4, 1))
    assert start == dt.datetime(2026, 3, 31, 16, tzinfo=dt.UTC) and (end - start) == dt.timedelta(days=1)


def test_an_invoice_counts_under_the_eligible_category_it_matches_else_other() -> None:
    r = Rollup.of(CAMPAIGN)
    assert r.industry("catering") == "catering" and r.industry("餐饮服务") == "餐饮"
    assert r.industry("software") == "other" and r.industry("") == "other"
    assert Rollup.of(CAMPAIGN) is r  # made once per campaign


def test_deltas_sum_per_cell() -> None:
    d = Deltas()
    day = dt.date(2026, 3, 1)
    d.add(day, "ch", "catering", "eligible", "", 1, 100)
    d.add(day, "ch", "catering", "eligible", "", 1, 250)
    d.add(day, "ch", "catering", "ineligible", "amount_mismatch")
    assert d.cells == {
        (day, "ch", "catering", "eligible", ""): [2, 350],
        (day, "ch", "catering", "ineligible", "amount_mismatch"): [1, 0],
    }
    assert not Deltas()


def test_distinct_values_are_signed_64_bit_and_stable() -> None:
    person = "ff" * 32
    assert rollup._person64(person) == -1 and rollup._person64("0" * 64) == 0
    assert rollup._hash64("91340104MA1W0556X9") == rollup._hash64("91340104MA1W0556X9")
    assert -(2**63) <= rollup._hash64("x") < 2**63 and rollup._person64("p-not-hex") == rollup._hash64("p-not-hex")


def test_hours_are_utc_hours_and_sum_per_cell_beside_the_days() -> None:
    at = dt.datetime(2026, 3, 31, 16, 59, 59, 999000, tzinfo=dt.UTC)
    hour = dt.datetime(2026, 3, 31, 16, tzinfo=dt.UTC)
    assert Rollup.hour_of_ms(int(at.timestamp() * 1000)) == hour
    assert Rollup.hour_of(at.astimezone(Rollup.of(CAMPAIGN).zone)) == hour
    d = Deltas()
    assert not d
    d.add_hour(hour, "ch", "received", "", 2, 300)
    d.add_hour(hour, "ch", "received", "", 1, 50)
    d.add_hour(hour, "ch", "rejected", "invalid_amount")
    assert d and not d.cells
    assert d.hours == {(hour, "ch", "received", ""): [3, 350], (hour, "ch", "rejected", "invalid_amount"): [1, 0]}
