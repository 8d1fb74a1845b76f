"""The days the report and reconciliation endpoints take (gateway/reports.py)."""

from __future__ import annotations

import datetime as dt

import pytest

from gateway import codes, reports
from gateway.errors import Problem


@pytest.mark.parametrize("day", ["1446-06-28", "1970-01-01", "9999-12-31", "2026-02-30", "20260301xx", "2026-W09-1"])
def test_a_day_the_stores_cannot_hold_is_a_bad_parameter(day: str) -> None:
    # Found by tests/e2e/test_fuzz.py: a reconciliation of 1446-06-28 answered 503 (a negative stream id).
    with pytest.raises(Problem) as refused:
        reports.parse_day(day, "date")
    assert refused.value.code == codes.BAD_PARAMETER


def test_a_day_of_the_unix_era_is_read() -> None:
    assert reports.parse_day("2026-03-01", "date") == dt.date(2026, 3, 1)
