"""``POST /v1/invoices``: authenticate, decode, validate, admit (rate limits, caps), deduplicate and enqueue;
202 with a result per invoice."""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
from collections import Counter
from typing import Any

import asyncpg
import msgspec
import orjson
from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import Response

from dedup.claim import PERSON_TAG, Item, Owner
from gateway import auth, metrics
from gateway.body import read_limited
from gateway.deps import Deps, deps
from gateway.errors import BadRequest, TooManyRequests, Unavailable, UnsupportedMediaType
from gateway.model import Invoice, Queued, RawUpload, Upload
from gateway.signing import receipt
from gateway.validate import Rejection, check
from ratelimit import limits
from ratelimit.caps import REFUSALS

JSON_UPLOAD = msgspec.json.Decoder(Upload)
JSON_RAW = msgspec.json.Decoder(RawUpload)
JSON_INVOICE = msgspec.json.Decoder(Invoice)
MSGPACK_UPLOAD = msgspec.msgpack.Decoder(Upload)
MSGPACK_RAW = msgspec.msgpack.Decoder(RawUpload)
MSGPACK_INVOICE = msgspec.msgpack.Decoder(Invoice)
QUEUED = msgspec.msgpack.Encoder()
MSGPACK_TYPES = ("application/msgpack", "application/x-msgpack", "application/vnd.msgpack")
STORE_ERRORS = (RedisError, OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)
log = logging.getLogger(__name__)


async def upload(request: Request) -> Response:
    d = deps(request)
    now = time.time()
    client = auth.check_headers(request, d.clients, now, d.settings.clock_skew_s)
    body = await read_limited(request, d.settings.max_body_bytes)
    auth.check_signed(request, client, body)
    auth.check_role(client, "channel")
    # The nonce is spent in the rate-limit call (one round trip for both), after decoding: a body that does
    # not decode is refused (400) whoever sends it again.
    nonce = auth.request_nonce(request, client, d.settings.nonce_ttl_s)
    decoded = decode(body, request.headers.get("content-type", "application/json"), d.settings.max_invoices)
    request_id = getattr(request.state, "request_id", None) or os.urandom(12).hex()  # set by the access log
    results, headers = await admit(d, client.client_id, request_id, decoded, int(now * 1000), nonce)
    return Response(
        orjson.dumps({"request_id": request_id, "results": results}),
        status_code=202,
        media_type="application/json",
        headers=headers,
    )


def decode(body: bytes, content_type: str, max_invoices: int) -> list[Invoice | Rejection]:
    """The invoices of a body; one that does not fit the Invoice shape becomes its own Rejection."""
    media = content_type.partition(";")[0].strip().lower()
    whole: Any
    raw: Any
    single: Any
    if media in MSGPACK_TYPES:
        whole, raw, single = MSGPACK_UPLOAD, MSGPACK_RAW, MSGPACK_INVOICE
    elif media in ("application/json", ""):
        whole, raw, single = JSON_UPLOAD, JSON_RAW, JSON_INVOICE
    else:
        raise UnsupportedMediaType("unsupported_media_type", "send application/json or application/msgpack")
    try:
        return _counted(list(whole.decode(body).invoices), max_invoices)
    except msgspec.DecodeError:
        pass  # some invoice does not fit: decode them one by one, each failure its own rejection
    try:
        parts = raw.decode(body).invoices
    except msgspec.DecodeError as exc:
        raise BadRequest("malformed_body", f'the body must be {{"invoices": [...]}}: {exc}') from exc
    _counted(parts, max_invoices)  # before decoding each: a huge list of junk costs one check
    return [_decode_one(single, part) for part in parts]


def _counted(items: list[Any], max_invoices: int) -> list[Any]:
    if not 1 <= len(items) <= max_invoices:
        raise BadRequest("invoice_count", f"send 1 to {max_invoices} invoices")
    return items


def _decode_one(decoder: Any, part: msgspec.Raw) -> Invoice | Rejection:
    try:
        invoice: Invoice = decoder.decode(part)
    except msgspec.DecodeError as exc:
        return Rejection("invalid_shape", str(exc))
    return invoice


async def admit(
    d: Deps, channel: str, request_id: str, items: list[Invoice | Rejection], now_ms: int, nonce: limits.Nonce
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Every stage after decoding, each narrowing the invoices that go on; a result per invoice."""
    person_secret = d.settings.person_secret
    checked = [
        it if isinstance(it, Rejection) else check(it, d.campaign, channel, person_secret, now_ms) for it in items
    ]
    results: dict[int, dict[str, Any]] = {}
    first: dict[str, int] = {}  # a key twice in one request: the first goes on, the rest are duplicates
    for i, item in enumerate(checked):
        if isinstance(item, Rejection):
            results[i] = {"index": i, "status": "rejected", "reason": item.reason, "detail": item.detail}
        elif item.key in first:
            results[i] = {"index": i, "key": item.key, "status": "duplicate"}
        else:
            first[item.key] = i
    going: list[tuple[int, Queued]] = [(i, q) for i in first.values() if isinstance(q := checked[i], Queued)]
    decision = await rate_limit(d, channel, len(items), [q for _, q in going], nonce)
    going = _drop_rate_limited(going, decision, results)
    reservations = await reserve_caps(d, [q for _, q in going])
    going = _drop_capped(going, reservations, results)
    await claim(d, channel, request_id, now_ms, going, reservations, results)
    d.admission.spent(channel, sum(1 for r in results.values() if r.get("receipt") and r["status"] == "accepted"))
    _count(channel, results.values())
    headers = {"RateLimit-Policy": limits.policy_header(d.ratelimiter.of(channel))}
    if decision is not None:
        headers["RateLimit"] = f'"requests";r={decision.remaining};t={math.ceil(decision.reset_ms / 1000)}'
    return [results[i] for i in range(len(items))], headers


async def rate_limit(
    d: Deps, channel: str, count: int, invoices: list[Queued], nonce: limits.Nonce
) -> limits.Decision | None:
    """The replay guard, the channel's and each invoice's rate limits, in one call. The limits fail open: a slow
    or absent Redis lets traffic through; the replay guard then runs on its own and fails closed."""
    try:
        async with asyncio.timeout(d.settings.ratelimit_timeout_ms / 1000):  # no task of its own, as wait_for makes
            decision = await d.ratelimiter.decide(channel, count, invoices, nonce)
    except STORE_ERRORS:
        metrics.RATELIMIT_FAIL_OPEN.inc()
        await auth.spend_nonce(d.redis, nonce)
        return None
    if decision.replayed:
        auth.raise_replayed()
    if decision.channel_wait_ms > 0:
        retry_s = str(math.ceil(decision.channel_wait_ms / 1000))
        c = d.ratelimiter.of(channel)
        raise TooManyRequests(
            "channel_rate_limited",
            f"this channel is over its rate ({c.channel_requests_per_s:g} requests/s, {c.channel_invoices_per_s:g}"
            " invoices/s); retry after Retry-After seconds",
            {
                "Retry-After": retry_s,
                "RateLimit-Policy": limits.policy_header(c),
                "RateLimit": f'"requests";r=0;t={retry_s}',
            },
        )
    return decision


def _drop_rate_limited(
    going: list[tuple[int, Queued]], decision: limits.Decision | None, results: dict[int, dict[str, Any]]
) -> list[tuple[int, Queued]]:
    if decision is None:
        return going
    kept = []
    for (i, q), wait_ms in zip(going, decision.invoice_waits_ms, strict=True):
        if wait_ms > 0:
            results[i] = {"index": i, "key": q.key, "status": "rate_limited", "retry_after": math.ceil(wait_ms / 1000)}
        else:
            kept.append((i, q))
    return kept


async def reserve_caps(d: Deps, invoices: list[Queued]) -> list[str]:
    """Campaign caps. Fail closed: without Redis nothing is accepted (503)."""
    try:
        return await d.caps.reserve(invoices) if invoices else []
    except STORE_ERRORS as exc:
        raise Unavailable("store_unavailable", "the campaign caps cannot be checked now", {"Retry-After": "1"}) from exc


def _drop_capped(
    going: list[tuple[int, Queued]], reservations: list[str], results: dict[int, dict[str, Any]]
) -> list[tuple[int, Queued]]:
    kept = []
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
    return kept


async def claim(
    d: Deps,
    channel: str,
    request_id: str,
    now_ms: int,
    going: list[tuple[int, Queued]],
    reservations: list[str],
    results: dict[int, dict[str, Any]],
) -> None:
    """Deduplicate and enqueue (fail closed), then give back the cap slots of duplicates of other persons."""
    if not going:
        return
    held = [r for r in reservations if r not in REFUSALS]
    items = [Item(q.key, QUEUED.encode(q), q.person) for _, q in going]
    try:
        owners = await d.claimer.claim_and_enqueue(channel, now_ms, request_id, items)
    except STORE_ERRORS as exc:
        # The outcome is unknown (some shards may have enqueued): the slots stay held. A retry finds them
        # "held" and takes no new ones; an invoice never sent again costs its person one slot.
        raise Unavailable(
            "store_unavailable", "the intake queue cannot take invoices now", {"Retry-After": "1"}
        ) from exc
    secret = d.settings.receipt_secret
    refunds = []
    for (i, q), owner, reserved in zip(going, owners, held, strict=True):
        if owner is None:
            results[i] = {
                "index": i,
                "key": q.key,
                "status": "accepted",
                "receipt": receipt(secret, q.key, channel, now_ms),
            }
        else:
            results[i] = {"index": i, "key": q.key, "status": "duplicate"}
            if owner.channel == channel and owner.accepted_at_ms:
                # This channel's own earlier upload (or a retry after a lost answer): its receipt again.
                results[i]["receipt"] = receipt(secret, q.key, channel, owner.accepted_at_ms)
            if reserved == "new" and not _same_person(owner, q):
                refunds.append(q)
    await _give_back(d, refunds)


def _same_person(owner: Owner, q: Queued) -> bool:
    return owner.person == q.person[:PERSON_TAG]


async def _give_back(d: Deps, invoices: list[Queued]) -> None:
    """Best effort: the invoices' answers stand whatever happens here; a slot not given back is counted."""
    if not invoices:
        return
    try:
        await d.caps.release(invoices)
    except STORE_ERRORS:
        metrics.CAP_RELEASE_FAILED.inc(len(invoices))
        log.warning("could not give back %d cap slots", len(invoices))


def _count(channel: str, results: Any) -> None:
    tally = Counter((r["status"], r.get("reason", "")) for r in results)
    for (status, reason), n in tally.items():
        metrics.INVOICES.labels(channel, status, reason).inc(n)
