"""The receipts' public keys and their check: ``GET /v1/keys`` (any role: the keys are public, and a channel may
hand them on to whoever checks a receipt, a consumer's complaint desk included) and ``POST /v1/receipts/verify``
(role channel: a receipt of this channel, either format, checked by the gateway).

A key is valid from its registration (a gateway starting with it) until it is retired (``gateway
retire-receipt-key KID``); a receipt verifies when its time lies within its key's validity, give or take the
300 s a request's timestamp may differ from the gateway's clock.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import asyncpg
import msgspec
import orjson
from starlette.requests import Request
from starlette.responses import Response

from core.times import iso_from_ms, iso_ms
from gateway import admit, codes, receipts
from gateway.deps import deps
from gateway.errors import Problem
from gateway.parse import UNDECODABLE

SKEW_MS = 300_000


class Presented(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A receipt to check, with the invoice key it is for."""

    key: str
    receipt: str


DECODE = msgspec.json.Decoder(Presented)


async def public_keys(request: Request) -> Response:
    """Every receipt key, as JSON Web Keys (RFC 8037: ``kty`` OKP, ``crv`` Ed25519, ``x`` the raw public key in
    base64url) with their validity. Signed, as every /v1 request is (SPEC.md), by a client of any role; the keys
    themselves are public: a channel may hand them on with a receipt."""
    d = deps(request)
    await admit.any_role(request, d.clients, d.redis, d.settings.api, d.ratelimiter)
    rows = await receipts.published(d.pool)
    keys = [_jwk(r) for r in rows]
    headers = {"Cache-Control": "public, max-age=300"}
    return Response(orjson.dumps({"keys": keys}), media_type="application/json", headers=headers)


def _jwk(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "kid": row["kid"],
        "kty": "OKP",
        "crv": "Ed25519",
        "alg": "EdDSA",
        "use": "sig",
        "x": receipts.b64url(bytes(row["public_key"])),
        "not_before": iso_ms(row["not_before"]),
        "not_after": None if row["not_after"] is None else iso_ms(row["not_after"]),
    }


async def verify_receipt(request: Request) -> Response:
    """Whether a receipt proves that the calling channel had the key accepted, and when."""
    d = deps(request)
    client, body = await admit.channel_request(request, d.clients, d.redis, d.settings.api, d.ratelimiter)
    try:
        presented = DECODE.decode(body)
    except UNDECODABLE as exc:
        raise Problem(codes.MALFORMED_BODY, f'{{"key": "...", "receipt": "..."}}: {exc}') from exc
    rows = await receipts.published(d.pool)
    verdict = receipts.verify(
        presented.receipt,
        presented.key,
        client.client_id,
        {r["kid"]: bytes(r["public_key"]) for r in rows if _covers(r, presented.receipt)},
        d.settings.secrets.receipt_secret,
    )
    answer = {
        "valid": verdict.valid,
        "algorithm": verdict.algorithm,
        "kid": verdict.kid,
        "accepted_at": None if verdict.accepted_at_ms is None else iso_from_ms(verdict.accepted_at_ms),
    }
    return Response(orjson.dumps(answer), media_type="application/json")


def _covers(row: asyncpg.Record, receipt: str) -> bool:
    """Whether the receipt's time lies within the key's validity (with the clock skew a request may have)."""
    parts = receipt.split(".")
    if len(parts) != 5 or not (parts[2].isascii() and parts[2].isdigit() and len(parts[2]) <= 16):
        return True  # not a time: the signature check refuses it
    at = dt.datetime.fromtimestamp(int(parts[2]) / 1000, dt.UTC)
    skew = dt.timedelta(milliseconds=SKEW_MS)
    return bool(row["not_before"] - skew <= at and (row["not_after"] is None or at <= row["not_after"] + skew))
