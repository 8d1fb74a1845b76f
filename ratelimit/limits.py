"""Rate limits (protecting the system): per channel (requests/s, invoices/s), per user and per device
(invoices per minute and per day). One script call per request does them all (``limits.lua``, GCRA), and
spends the request's nonce in the same call (the replay guard, under the channel's hash tag).

GCRA rather than a sliding-window counter: one stored time per limit instead of two counters, an exact
answer to "when may I retry" (the Retry-After the channels need), and no burst at a window's edge.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from core import keys, lua
from core.campaign import ChannelLimits, Limits
from core.contract import Queued
from core.stores import RedisClient

DAY_MS = 86_400_000
# limits.lua refuses a request only when its wait exceeds this (the number is written there too): at today's
# clock (1.8e12 ms) a double carries 2^-12 ms, and without it the rounding of an interval such as 1000/3 ms
# refused about one request in two of a burst-1 limit, and often the last of a burst, each rounding adding up
# (tests/unit/test_properties.py). 10 µs early is no rate.
GCRA_SLACK_MS = 0.01


def gcra(count: float, window_ms: float, burst: float) -> tuple[float, float]:
    """(interval, tolerance) in ms of a limit of ``count`` per ``window_ms`` with a burst of ``burst``."""
    interval = window_ms / count
    return interval, max(burst - 1, 0) * interval


def script_argv(c: ChannelLimits) -> list[float]:
    """ARGV[1..12] of limits.lua."""
    pairs = [
        gcra(c.channel_requests_per_s, 1000, c.channel_requests_burst),
        gcra(c.channel_invoices_per_s, 1000, c.channel_invoices_burst),
        gcra(c.user_invoices_per_minute, 60_000, c.user_invoices_per_minute),
        gcra(c.user_invoices_per_day, DAY_MS, c.user_invoices_per_day),
        gcra(c.device_invoices_per_minute, 60_000, c.device_invoices_per_minute),
        gcra(c.device_invoices_per_day, DAY_MS, c.device_invoices_per_day),
    ]
    return [v for pair in pairs for v in pair]


def policy_header(c: ChannelLimits) -> str:
    """``RateLimit-Policy`` (draft-ietf-httpapi-ratelimit-headers): the channel's request and invoice quotas."""
    return f'"requests";q={c.channel_requests_burst};w=1, "invoices";q={c.channel_invoices_burst};w=1'


class Decision(msgspec.Struct, frozen=True):
    channel_wait_ms: int  # > 0: the whole request is refused
    remaining: int  # of the channel's request burst
    reset_ms: int  # until that burst is whole again
    invoice_waits_ms: list[int]  # per invoice: 0 let through, else ms until it would be
    replayed: bool = False  # the nonce was spent by another request: nothing else was decided


class Nonce(msgspec.Struct, frozen=True):
    """A request's nonce as the replay guard stores it: its key, this request's token, how long it stays spent."""

    key: str
    token: bytes
    ttl_s: int


class RateLimiter:
    def __init__(self, redis: RedisClient, limits: Limits) -> None:
        self._redis = redis
        self._script = redis.register_script(lua.load("ratelimit", "limits.lua"))
        self._limits = limits
        self._argv: dict[str, list[float]] = {}

    def of(self, channel: str) -> ChannelLimits:
        return self._limits.of(channel)

    async def decide(self, channel: str, invoice_count: int, invoices: Sequence[Queued], nonce: Nonce) -> Decision:
        """The nonce (spent, or a replay), the channel's verdict on the whole request, then the user and device
        verdict on each invoice. ``nonce.key`` must carry the channel's hash tag (``keys.nonce``)."""
        script_keys, args = self.call(channel, invoice_count, invoices, nonce)
        return decision(await lua.run(self._redis, self._script, script_keys, args))

    def call(
        self, channel: str, invoice_count: int, invoices: Sequence[Queued], nonce: Nonce
    ) -> tuple[list[str], list[Any]]:
        """KEYS and ARGV of limits.lua for the request."""
        names: dict[str, int] = {}
        pairs: list[int] = []
        for q in invoices:
            for name in (keys.user_rate(channel, q.user_ref), keys.device_rate(channel, q.device_ref)):
                pairs.append(names.setdefault(name, len(names) + 3))
        head = self._argv.get(channel) or self._argv.setdefault(channel, script_argv(self.of(channel)))
        return (
            [nonce.key, keys.channel_rates(channel), *names],
            [*head, invoice_count, nonce.token, nonce.ttl_s, lua.indices(pairs)],
        )


def decision(reply: list[Any]) -> Decision:
    """limits.lua's answer, read."""
    if reply[0] < 0:
        return Decision(0, 0, 0, [], replayed=True)
    if reply[0] > 0:
        return Decision(int(reply[0]), 0, int(reply[0]), [])
    return Decision(0, int(reply[1]), int(reply[2]), [int(w) for w in reply[3:]])
