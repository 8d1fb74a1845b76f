"""The rate limits' arithmetic (ratelimit/limits.py): the GCRA parameters handed to limits.lua, checked with an
independent model of the algorithm (a request conforms when max(tat, now) + T - now <= tau + T)."""

from __future__ import annotations

import pytest

from core.campaign import ChannelLimits
from ratelimit import limits


class Model:
    """GCRA as the ITU defines it, one request at a time: what limits.lua does for a cost of 1."""

    def __init__(self, interval: float, tolerance: float) -> None:
        self.interval, self.tolerance, self.tat = interval, tolerance, 0.0

    def allow(self, now: float) -> bool:
        base = max(self.tat, now)
        if base + self.interval - now > self.tolerance + self.interval:
            return False
        self.tat = base + self.interval
        return True


@pytest.mark.parametrize(("rate", "window_ms", "burst"), [(10, 1000, 5), (2000, 1000, 4000), (60, 86_400_000, 60)])
def test_a_limit_lets_its_burst_through_at_once_then_its_rate(rate: float, window_ms: float, burst: float) -> None:
    model = Model(*limits.gcra(rate, window_ms, burst))
    at_once = sum(model.allow(1e9) for _ in range(int(burst) + 10))
    assert at_once == burst
    interval = window_ms / rate
    later = [model.allow(1e9 + interval * (i + 1)) for i in range(20)]
    assert all(later)  # one more each interval, never more
    assert not model.allow(1e9 + interval * 20)


def test_gcra_parameters() -> None:
    assert limits.gcra(10, 1000, 5) == (100.0, 400.0)
    assert limits.gcra(0.5, 1000, 2) == (2000.0, 2000.0)
    assert limits.gcra(10, 60_000, 0) == (6000.0, 0.0)  # no burst below one request


def test_script_argv_is_the_six_limits_in_the_order_limits_lua_reads_them() -> None:
    c = ChannelLimits(
        channel_requests_per_s=100,
        channel_requests_burst=10,
        channel_invoices_per_s=1000,
        channel_invoices_burst=2000,
        user_invoices_per_minute=10,
        user_invoices_per_day=60,
        device_invoices_per_minute=20,
        device_invoices_per_day=120,
    )
    argv = limits.script_argv(c)
    assert len(argv) == 12
    assert argv[0:2] == [10.0, 90.0]  # channel requests: T = 10 ms, tau = 9 T
    assert argv[2:4] == [1.0, 1999.0]  # channel invoices
    assert argv[4:6] == [6000.0, 54_000.0]  # a user's minute: its whole quota may come at once
    assert argv[6:8] == [86_400_000 / 60, 59 * 86_400_000 / 60]
    assert argv[8:10] == [3000.0, 57_000.0]
    assert argv[10:12] == [86_400_000 / 120, 119 * 86_400_000 / 120]
    assert limits.policy_header(c) == '"requests";q=10;w=1, "invoices";q=2000;w=1'
