"""A day's report made from rollup rows: additive figures summed per scope, distinct counts taken per scope, the
prize fields defined and null, and the CSV's columns fixed (the format must not change under its users)."""

from __future__ import annotations

import csv
import datetime as dt
import io

from core import report
from core.rollup import ALL

DAY = dt.date(2026, 3, 1)
ROWS = [
    (DAY, "ch1", "catering", "received", "", 3, 30000),
    (DAY, "ch1", "other", "received", "", 1, 5000),
    (DAY, "ch2", "catering", "received", "", 2, 20000),
    (DAY, "ch1", "catering", "accepted", "", 2, 0),
    (DAY, "ch2", "catering", "duplicate", "", 2, 0),
    (DAY, "ch1", "catering", "rejected", "invalid_number", 1, 0),
    (DAY, "ch1", "other", "capped", "person_daily_cap", 1, 0),
    (DAY, "ch1", "catering", "eligible", "", 2, 25000),
    (DAY, "ch1", "catering", "ineligible", "amount_mismatch", 1, 0),
    (DAY, ALL, ALL, "consumers", "", 2, 0),
    (DAY, "ch1", ALL, "consumers", "", 2, 0),
    (DAY, ALL, "catering", "consumers", "", 2, 0),
    (DAY, "ch1", "catering", "consumers", "", 2, 0),
    (DAY, ALL, ALL, "merchants", "", 1, 0),
    (DAY, "ch1", ALL, "merchants", "", 1, 0),
    (DAY, ALL, "catering", "merchants", "", 1, 0),
    (DAY, "ch1", "catering", "merchants", "", 1, 0),
]


def test_the_days_figures_sum_cells_and_take_distinct_counts_per_scope() -> None:
    found = report.day(DAY, ROWS)
    assert (found["received"], found["received_amount_fen"]) == (6, 55000)
    assert (found["accepted"], found["duplicate"], found["rejected"], found["capped"]) == (2, 2, 1, 1)
    assert found["rejected_by_reason"] == {"invalid_number": 1} and found["capped_by_reason"] == {"person_daily_cap": 1}
    assert (found["eligible"], found["eligible_amount_fen"], found["merchants"], found["consumers"]) == (2, 25000, 1, 2)
    assert found["prizes_by_tier"] is None and found["prize_amount_fen"] is None and found["pull_ratio"] is None
    by_channel = {c["channel"]: c for c in found["by_channel"]}
    assert by_channel["ch1"]["received"] == 4 and by_channel["ch2"]["received"] == 2
    assert by_channel["ch1"]["consumers"] == 2 and by_channel["ch2"]["consumers"] == 0
    by_industry = {i["industry"]: i for i in found["by_industry"]}
    assert by_industry["catering"]["received"] == 5 and by_industry["other"]["capped"] == 1
    assert by_industry["catering"]["merchants"] == 1


def test_one_channels_report_is_its_own_figures_with_its_own_distinct_counts() -> None:
    found = report.day(DAY, [r for r in ROWS if r[1] == "ch1"], channel="ch1")
    assert found["channel"] == "ch1" and found["received"] == 4 and found["duplicate"] == 0
    assert found["consumers"] == 2 and [c["channel"] for c in found["by_channel"]] == ["ch1"]
    assert found["by_channel"][0]["consumers"] == 2
    assert {i["industry"]: i["consumers"] for i in found["by_industry"]} == {"catering": 2, "other": 0}


def test_a_day_without_rows_has_every_count_zero() -> None:
    found = report.day(DAY, [])
    assert all(found[c] == 0 for c in report.COUNTS) and found["by_channel"] == [] and found["by_industry"] == []


def test_csv_has_fixed_columns_and_a_row_per_scope() -> None:
    days = [report.day(DAY, ROWS)]
    rows = list(csv.reader(io.StringIO(report.csv_text(days))))
    assert rows[0] == ["date", "channel", "industry", *report.columns()]
    assert report.columns() == [
        *("received", "received_amount_fen", "accepted", "duplicate", "rejected", "rejected_by_reason"),
        *("rate_limited", "capped", "capped_by_reason", "verified", "eligible", "eligible_amount_fen"),
        *("ineligible", "ineligible_by_reason", "held", "held_by_reason", "reversed", "reversed_amount_fen"),
        *("merchants", "consumers", "prizes_by_tier", "prize_amount_fen", "pull_ratio"),
    ]
    scopes = [(r[0], r[1], r[2]) for r in rows[1:]]
    assert scopes == [
        ("2026-03-01", "*", "*"),
        ("2026-03-01", "ch1", "*"),
        ("2026-03-01", "ch2", "*"),
        ("2026-03-01", "*", "catering"),
        ("2026-03-01", "*", "other"),
    ]
    total = dict(zip(rows[0], rows[1], strict=True))
    assert total["received"] == "6" and total["rejected_by_reason"] == "invalid_number:1" and total["pull_ratio"] == ""
