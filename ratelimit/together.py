"""The rate limits and the caps in one script call (issue 19): where one Redis holds every key of both (a single
Redis, not a cluster) and a request of a few invoices counts in one cap shard and day (a single-invoice upload
always), its admission is one round trip instead of two. ``limits_caps.lua`` runs limits.lua, then caps.lua on
the invoices the limits let through: the answers of the two calls in a row, from the same scripts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core import lua
from core.contract import Queued
from core.stores import RedisClient, is_cluster
from ratelimit.caps import Caps
from ratelimit.limits import Decision, Nonce, RateLimiter, decision

# Requests of more invoices keep the two calls. Their Redis time grows with the invoices (the limits and the caps
# of 100 are about 1 ms), and under a burst of them the one call, which the limits' 50 ms timeout bounds, timed
# out where the limits alone did not, each time falling back to the caps alone and a new connection
# (benchmarks/single_stages.py --invoices 100); the round trip it saves is one in a hundred invoices there.
MOST_INVOICES = 10


def script() -> str:
    """limits.lua and caps.lua, each wrapped as a function of its own KEYS and ARGV, then the driver."""
    wrapped = [
        f"local function {name}(KEYS, ARGV)\n{lua.load('ratelimit', name + '.lua')}\nend\n"
        for name in ("limits", "caps")
    ]
    return "".join(wrapped) + lua.load("ratelimit", "limits_caps.lua")


class LimitsAndCaps:
    def __init__(self, redis: RedisClient, ratelimiter: RateLimiter, caps: Caps) -> None:
        self._redis = redis
        self.ratelimiter = ratelimiter
        self._caps = caps
        self._script = redis.register_script(script())
        self._one_node = not is_cluster(redis)

    async def decide(
        self, channel: str, invoice_count: int, invoices: Sequence[Queued], nonce: Nonce
    ) -> tuple[Decision, list[str]] | None:
        """The limits' decision and, per invoice they let through (in order), its reservation (``Caps.reserve``'s
        answers); none when the request is refused whole. None: not in one call here (a cluster, or invoices of
        several cap shards or days): the caller makes the two."""
        if not self._one_node or len(invoices) > MOST_INVOICES:
            return None
        calls = self._caps.reservations(invoices)
        if len(calls) > 1:
            return None
        limit_keys, limit_args = self.ratelimiter.call(channel, invoice_count, invoices, nonce)
        cap_keys: list[str] = []
        cap_args: list[Any] = []
        for group, call in calls.items():
            cap_keys, cap_args = list(call.keys), self._caps.reserve_argv(group, call)
        args = [len(limit_keys), len(limit_args), *limit_args, *cap_args]
        limited, reserved = await lua.run(self._redis, self._script, [*limit_keys, *cap_keys], args)
        return decision(limited), [r.decode() for r in reserved]
