"""An upload's admission and claim in one script call (issue 19).

The nonce and the rate limits (ratelimit/limits.lua), the caps of the invoices the limits let through
(ratelimit/caps.lua) and, when every invoice got through both, their claim and enqueue (dedup/claim_enqueue.lua),
each script as written, wrapped as a function of its own KEYS and ARGV and run in a row by ``together.lua``. It
applies where one Redis holds every key (a single Redis, not a cluster), the request is small (``MOST_INVOICES``),
its invoices count in one cap shard and day and fall in one intake shard, and no replica must acknowledge the
claim (``Claimer.first_call``): a single-invoice upload is then one round trip where it was three. The call goes
on the process's shared connection (core/line.py), within the limits' timeout. When an invoice
is refused by the limits or the caps, the call claims nothing and the claim goes on its own as before, with the
tally of what admission decided.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, NamedTuple

from core import lua
from core.contract import Queued
from core.line import Line
from core.stores import RedisClient, is_cluster
from dedup import scripts
from ratelimit.caps import Caps
from ratelimit.limits import Decision, Nonce, RateLimiter, decision

# Requests of more invoices keep the separate calls. Their Redis time grows with the invoices (the limits and the
# caps of 100 are about 1 ms), and under a burst of them the one call, which the limits' 50 ms timeout bounds,
# timed out where the limits alone did not, each time falling back to the calls alone and a new connection
# (benchmarks/single_stages.py --invoices 100); the round trips it saves are two in a hundred invoices there.
MOST_INVOICES = 10


class Answer(NamedTuple):
    decision: Decision
    reserved: list[str]  # per invoice the limits let through, in order: Caps.reserve's answer; [] when refused whole
    claimed: list[bytes] | None  # the claim script's answers (its "check" round), or None: nothing claimed here


def script() -> str:
    """The three scripts, each wrapped as a function of its own KEYS and ARGV, then the driver."""
    parts = [
        ("limits", lua.load("ratelimit", "limits.lua")),
        ("caps", lua.load("ratelimit", "caps.lua")),
        ("claim", scripts.load("claim_enqueue.lua")),
    ]
    wrapped = [f"local function {name}(KEYS, ARGV)\n{body}\nend\n" for name, body in parts]
    return "".join(wrapped) + lua.load("gateway", "together.lua")


class Together:
    def __init__(self, redis: RedisClient, ratelimiter: RateLimiter, caps: Caps) -> None:
        self._redis = redis
        self.ratelimiter = ratelimiter
        self._caps = caps
        self._script = redis.register_script(script())
        self._one_node = not is_cluster(redis)
        self._line = Line.of(redis)  # None for a unix socket or TLS: redis-py's pool then

    def takes(self, count: int) -> bool:
        """Whether a request of ``count`` invoices going on may be admitted (and claimed) in one call here."""
        return self._one_node and 0 < count <= MOST_INVOICES

    async def decide(
        self,
        channel: str,
        invoice_count: int,
        invoices: Sequence[Queued],
        nonce: Nonce,
        timeout_s: float,
        claim: tuple[list[str], list[Any]] | None = None,
    ) -> Answer | None:
        """Within ``timeout_s`` (else redis-py's TimeoutError or the builtin one): the limits' decision, the
        reservations of the invoices they let through and, with ``claim`` (the claim script's KEYS and ARGV for
        ``invoices``), the claim's answers when every invoice got through. None: not in one call here (a cluster, a
        large request, invoices of several cap shards or days): the caller makes the calls on its own."""
        if not self.takes(len(invoices)):
            return None
        calls = self._caps.reservations(invoices)
        if len(calls) > 1:
            return None
        limit_keys, limit_args = self.ratelimiter.call(channel, invoice_count, invoices, nonce)
        cap_keys: list[str] = []
        cap_args: list[Any] = []
        for group, call in calls.items():
            cap_keys, cap_args = call.names(), self._caps.reserve_argv(group, call)
        claim_keys, claim_args = claim if claim is not None and cap_args else ([], [])
        counts = [len(limit_keys), len(cap_keys), len(claim_keys), len(limit_args), len(cap_args)]
        keys, args = [*limit_keys, *cap_keys, *claim_keys], [*counts, *limit_args, *cap_args, *claim_args]
        if self._line is not None:
            limited, reserved, claimed = await self._line.evalsha(timeout_s, self._script, keys, args)
        else:
            async with asyncio.timeout(timeout_s):
                limited, reserved, claimed = await lua.run(self._redis, self._script, keys, args)
        return Answer(decision(limited), [r.decode() for r in reserved], claimed)

    async def aclose(self) -> None:
        if self._line is not None:
            await self._line.aclose()
