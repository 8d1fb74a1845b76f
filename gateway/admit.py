"""Stage 3 of an upload, admission: the replay guard and the rate limits of the channel, each user and each
device (one script call), then the campaign's caps per person (one round trip per request). Every other channel
request is admitted the same way, without invoices (``channel_request``).

The rate limits fail open: a slow or absent Redis lets traffic through, and the replay guard then runs on its
own and fails closed. The caps fail closed: without Redis nothing is accepted (503). The process's own load
shedding (ratelimit/shed.py) ran before the body was read, in gateway/middleware.py.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any, NamedTuple

from starlette.requests import Request

from core.contract import Queued
from core.errors import STORE_ERRORS, StoreUnavailable
from core.settings import Api
from core.stores import RedisClient
from gateway import auth, codes, metrics
from gateway.clients import Client, ClientTable
from gateway.errors import Problem
from gateway.parse import read_limited
from gateway.together import Together
from ratelimit import limits
from ratelimit.caps import REFUSALS, Caps

Going = list[tuple[int, Queued]]  # the invoices still going on, each with its index in the request
Results = dict[int, dict[str, Any]]  # the answer of each invoice decided so far, by index


class Admitted(NamedTuple):
    going: Going
    reservations: list[str]  # per invoice going on: "new" (a slot taken now) or "held" (taken before)
    decision: limits.Decision | None  # None when the limits failed open
    claimed: list[bytes] | None = None  # the claim's check round, made in the same call (gateway/together.py)


async def admit(
    channel: str,
    invoice_count: int,
    going: Going,
    results: Results,
    nonce: limits.Nonce,
    *,
    ratelimiter: limits.RateLimiter,
    caps: Caps,
    redis: RedisClient,
    timeout_s: float,
    together: Together | None = None,
    claim: tuple[list[str], list[Any]] | None = None,
) -> Admitted:
    """The invoices of ``going`` that pass the rate limits and the caps; the others get their answer in
    ``results``. Raises TooManyRequests when the channel is over its own rate (the whole request). With
    ``together``, in one call where it can (gateway/together.py), with the claim of ``claim`` (its script's KEYS
    and ARGV, made if every invoice passes), else the limits and the caps in a call each."""
    both = await _in_one_call(together, claim, channel, invoice_count, going, nonce, caps, redis, timeout_s)
    if both is None:
        decision = await rate_limit(channel, invoice_count, going, nonce, ratelimiter, redis, timeout_s)
        going = _drop_rate_limited(going, decision, results)
        reservations, claimed = await _reserve(caps, going), None
    else:
        decision, reservations, claimed = both
        going = _drop_rate_limited(going, decision, results)
    going, reservations = _drop_capped(going, reservations, results)
    return Admitted(going, reservations, decision, claimed)


async def _in_one_call(
    together: Together | None,
    claim: tuple[list[str], list[Any]] | None,
    channel: str,
    count: int,
    going: Going,
    nonce: limits.Nonce,
    caps: Caps,
    redis: RedisClient,
    timeout_s: float,
) -> tuple[limits.Decision | None, list[str], list[bytes] | None] | None:
    """The limits' decision, the reservations of the invoices they let through and the claim's answers (None: not
    claimed), in one call; None when it cannot be one (the caller makes the calls). Within ``timeout_s`` as the
    limits are: past it (the call may have run or not) the limits have failed open, and the replay guard and the
    caps are asked on their own, as the path of separate calls does then: a reservation the call made is found
    "held", not taken twice, and a claim it made is found to be this request's own (dedup/claim_enqueue.lua)."""
    if together is None:
        return None
    try:
        answer = await together.decide(channel, count, [q for _, q in going], nonce, timeout_s, claim)
    except STORE_ERRORS:
        await _fail_open(redis, nonce)
        return None, await _reserve(caps, going), None
    if answer is None:
        return None
    enforce(answer.decision, channel, together.ratelimiter)
    return answer


async def _reserve(caps: Caps, going: Going) -> list[str]:
    try:
        return await caps.reserve([q for _, q in going]) if going else []
    except STORE_ERRORS as exc:
        raise StoreUnavailable("the campaign caps cannot be checked now") from exc


def headers(ratelimiter: limits.RateLimiter, channel: str, decision: limits.Decision | None) -> dict[str, str]:
    """The RateLimit headers of an admitted request (draft-ietf-httpapi-ratelimit-headers)."""
    found = {"RateLimit-Policy": limits.policy_header(ratelimiter.of(channel))}
    if decision is not None:
        found["RateLimit"] = f'"requests";r={decision.remaining};t={math.ceil(decision.reset_ms / 1000)}'
    return found


def answer_with(request: Request, found: dict[str, str]) -> None:
    """Headers that every answer to this request carries from now on, errors included (gateway/middleware.py)."""
    request.state.ratelimit = found


async def channel_request(
    request: Request, clients: ClientTable, redis: RedisClient, api: Api, ratelimiter: limits.RateLimiter
) -> tuple[Client, bytes]:
    """Every channel request but the upload: authenticated (headers, body within its limit, signature, role),
    then its nonce spent and the channel's request rate counted in one call, as an upload's are (an invoice
    costs nothing here); every answer then carries the RateLimit headers. A channel over its rate gets 429."""
    client = auth.check_headers(request, clients, time.time(), api.clock_skew_s)
    body = await read_limited(request, api.max_body_bytes)
    auth.check_signed(request, client, body)
    auth.check_role(client, "channel")
    nonce = auth.request_nonce(request, client, api.nonce_ttl_s)
    timeout_s = api.ratelimit_timeout_ms / 1000
    decision = await rate_limit(client.client_id, 0, [], nonce, ratelimiter, redis, timeout_s)
    answer_with(request, headers(ratelimiter, client.client_id, decision))
    return client, body


async def any_role(
    request: Request, clients: ClientTable, redis: RedisClient, api: Api, ratelimiter: limits.RateLimiter
) -> Client:
    """An endpoint any client may call: a channel is admitted as its other requests are (with its RateLimit
    headers), any other role authenticated as itself."""
    caller = auth.check_headers(request, clients, time.time(), api.clock_skew_s)
    if caller.role == "channel":
        client, _ = await channel_request(request, clients, redis, api, ratelimiter)
    else:
        client, _ = await auth.authenticate(request, caller.role, clients, redis, api)
    return client


async def rate_limit(
    channel: str,
    count: int,
    going: Going,
    nonce: limits.Nonce,
    ratelimiter: limits.RateLimiter,
    redis: RedisClient,
    timeout_s: float,
) -> limits.Decision | None:
    """The replay guard, the channel's and each invoice's rate limits, in one call."""
    try:
        async with asyncio.timeout(timeout_s):  # no task of its own, as wait_for makes
            decision = await ratelimiter.decide(channel, count, [q for _, q in going], nonce)
    except STORE_ERRORS:
        await _fail_open(redis, nonce)
        return None
    enforce(decision, channel, ratelimiter)
    return decision


async def _fail_open(redis: RedisClient, nonce: limits.Nonce) -> None:
    """The limits did not answer in time: counted, and the replay guard asked on its own (it fails closed)."""
    metrics.RATELIMIT_FAIL_OPEN.inc()
    await auth.spend_nonce(redis, nonce)


def enforce(decision: limits.Decision, channel: str, ratelimiter: limits.RateLimiter) -> None:
    """A replayed nonce is refused (409), and a request over its channel's rate (429)."""
    if decision.replayed:
        auth.raise_replayed()
    if decision.channel_wait_ms > 0:
        retry_s = str(math.ceil(decision.channel_wait_ms / 1000))
        c = ratelimiter.of(channel)
        raise Problem(
            codes.CHANNEL_RATE_LIMITED,
            f"this channel is over its rate ({c.channel_requests_per_s:g} requests/s, {c.channel_invoices_per_s:g}"
            " invoices/s); retry after Retry-After seconds",
            {
                "Retry-After": retry_s,
                "RateLimit-Policy": limits.policy_header(c),
                "RateLimit": f'"requests";r=0;t={retry_s}',
            },
        )


def _drop_rate_limited(going: Going, decision: limits.Decision | None, results: Results) -> Going:
    if decision is None:
        return going
    kept = []
    for (i, q), wait_ms in zip(going, decision.invoice_waits_ms, strict=True):
        if wait_ms > 0:
            results[i] = {"index": i, "key": q.key, "status": "rate_limited", "retry_after": math.ceil(wait_ms / 1000)}
        else:
            kept.append((i, q))
    return kept


def _drop_capped(going: Going, reservations: list[str], results: Results) -> tuple[Going, list[str]]:
    kept, held = [], []
    for (i, q), answer in zip(going, reservations, strict=True):
        if answer in REFUSALS:
            results[i] = {
                "index": i,
                "key": q.key,
                "status": "rejected",
                "reason": answer,
                "detail": "the person has reached the campaign's cap",
            }
        else:
            kept.append((i, q))
            held.append(answer)
    return kept, held
