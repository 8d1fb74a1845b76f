"""``POST /v1/invoices``: authenticate, decode, validate, deduplicate and enqueue; 202 with a result each."""

from __future__ import annotations

import os
import time
from typing import Any

import asyncpg
import msgspec
import orjson
from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import Response

from gateway import auth, metrics
from gateway.body import read_limited
from gateway.deps import Deps, deps
from gateway.errors import BadRequest, Unavailable, UnsupportedMediaType
from gateway.model import Invoice, Queued, RawUpload, Upload
from gateway.signing import receipt
from gateway.validate import Rejection, check

JSON_UPLOAD = msgspec.json.Decoder(Upload)
JSON_RAW = msgspec.json.Decoder(RawUpload)
JSON_INVOICE = msgspec.json.Decoder(Invoice)
MSGPACK_UPLOAD = msgspec.msgpack.Decoder(Upload)
MSGPACK_RAW = msgspec.msgpack.Decoder(RawUpload)
MSGPACK_INVOICE = msgspec.msgpack.Decoder(Invoice)
QUEUED = msgspec.msgpack.Encoder()
MSGPACK_TYPES = ("application/msgpack", "application/x-msgpack", "application/vnd.msgpack")


async def upload(request: Request) -> Response:
    d = deps(request)
    now = time.time()
    client = auth.check_headers(request, d.clients, now, d.settings.clock_skew_s)
    body = await read_limited(request, d.settings.max_body_bytes)
    await auth.check_signature(request, client, body, d.redis, d.settings.nonce_ttl_s, role="channel")
    decoded = decode(body, request.headers.get("content-type", "application/json"), d.settings.max_invoices)
    request_id = os.urandom(12).hex()
    results = await admit(d, client.client_id, request_id, decoded, int(now * 1000))
    return Response(
        orjson.dumps({"request_id": request_id, "results": results}),
        status_code=202,
        media_type="application/json",
        headers={"X-Request-Id": request_id},
    )


def decode(body: bytes, content_type: str, max_invoices: int) -> list[Invoice | Rejection]:
    """The invoices of a body; one that does not fit the Invoice shape becomes its own Rejection."""
    whole: Any
    raw: Any
    single: Any
    media = content_type.partition(";")[0].strip().lower()
    if media in MSGPACK_TYPES:
        whole, raw, single = MSGPACK_UPLOAD, MSGPACK_RAW, MSGPACK_INVOICE
    elif media in ("application/json", ""):
        whole, raw, single = JSON_UPLOAD, JSON_RAW, JSON_INVOICE
    else:
        raise UnsupportedMediaType("unsupported_media_type", "send application/json or application/msgpack")
    items: list[Invoice | Rejection]
    try:
        items = list(whole.decode(body).invoices)
    except msgspec.DecodeError:
        try:
            parts = raw.decode(body).invoices
        except msgspec.DecodeError as exc:
            raise BadRequest("malformed_body", f'the body must be {{"invoices": [...]}}: {exc}') from exc
        items = [_decode_one(single, part) for part in parts]
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
    d: Deps, channel: str, request_id: str, items: list[Invoice | Rejection], now_ms: int
) -> list[dict[str, Any]]:
    """Validate each invoice, then claim and enqueue the valid ones in one Redis round trip."""
    checked = [
        item if isinstance(item, Rejection) else check(item, d.campaign, channel, d.settings.person_secret, now_ms)
        for item in items
    ]
    first: dict[str, int] = {}  # a key twice in one request: the first is claimed, the rest are duplicates
    for i, q in enumerate(checked):
        if isinstance(q, Queued):
            first.setdefault(q.key, i)
    valid = [(i, checked[i]) for i in first.values()]
    owners: list[str | None] = []
    if valid:
        try:
            owners = await d.claimer.claim_and_enqueue(
                channel,
                now_ms,
                request_id,
                [(q.key, QUEUED.encode(q)) for _, q in valid],  # type: ignore[union-attr]
            )
        except (RedisError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise Unavailable(
                "store_unavailable", "the intake queue cannot take invoices now", {"Retry-After": "1"}
            ) from exc
    results: list[dict[str, Any]] = [{}] * len(checked)
    for i, item in enumerate(checked):
        if isinstance(item, Rejection):
            results[i] = {"index": i, "status": "rejected", "reason": item.reason, "detail": item.detail}
            metrics.INVOICES.labels(channel, "rejected", item.reason).inc()
    secret = d.settings.receipt_secret
    outcome = dict(zip((i for i, _ in valid), owners, strict=True))
    for i, q in enumerate(checked):
        if not isinstance(q, Queued):
            continue
        owner = outcome[i] if first[q.key] == i else channel
        if owner is None:
            results[i] = {
                "index": i,
                "key": q.key,
                "status": "accepted",
                "receipt": receipt(secret, q.key, channel, now_ms),
            }
            metrics.INVOICES.labels(channel, "accepted", "").inc()
        else:
            results[i] = {"index": i, "key": q.key, "status": "duplicate"}
            metrics.INVOICES.labels(channel, "duplicate", "").inc()
    return results
