"""Stage 1 of every /v1 request, authentication (SPEC.md, "Authentication"): headers and time window before the
body is read, then signature, replay and role. Nothing unauthenticated reaches a later stage, and no Redis or
PostgreSQL work happens before the signature is good."""

from __future__ import annotations

import os
import re
import time
from typing import NoReturn

from starlette.requests import Request

from core import keys
from core.errors import STORE_ERRORS, StoreUnavailable
from core.settings import Api
from core.stores import RedisClient
from gateway import codes
from gateway.clients import Client, ClientTable
from gateway.errors import Problem
from gateway.parse import read_limited
from gateway.signing import canonical_string, signature_matches
from ratelimit.limits import Nonce

NONCE = re.compile(r"[A-Za-z0-9_-]{16,64}")
TIMESTAMP = re.compile(r"[0-9]{1,12}")  # ASCII digits only: str.isdigit() also accepts "²"
SIGNATURE = re.compile(r"[0-9a-f]{64}")
HEADERS = ("x-client-id", "x-timestamp", "x-nonce", "x-signature")


def path_and_query(request: Request) -> str:
    """The path with its raw query string, exactly as sent."""
    scope = request.scope
    raw_path = scope.get("raw_path") or scope["path"].encode()
    query: bytes = scope.get("query_string", b"")
    path = raw_path.decode("latin-1")
    return f"{path}?{query.decode('latin-1')}" if query else path


def check_headers(request: Request, clients: ClientTable, now_s: float, skew_s: int) -> Client:
    """The checks that need no body: headers present, client known, timestamp inside the window.

    Run before the body is read, so that an unknown caller costs no more than its headers.
    """
    headers = request.headers
    missing = [h for h in HEADERS if not headers.get(h)]
    if missing:
        raise Problem(codes.MISSING_AUTH_HEADER, f"missing header {missing[0]}")
    client = clients.get(headers["x-client-id"])
    if client is None:
        raise Problem(codes.UNKNOWN_CLIENT, "unknown client id")
    timestamp = headers["x-timestamp"]
    if not TIMESTAMP.fullmatch(timestamp) or abs(int(timestamp) - now_s) > skew_s:
        raise Problem(codes.STALE_TIMESTAMP, f"X-Timestamp must be Unix seconds within {skew_s} s of now")
    if not NONCE.fullmatch(headers["x-nonce"]):
        raise Problem(codes.BAD_NONCE, "X-Nonce must be 16 to 64 characters of A-Z a-z 0-9 _ -")
    return client


def check_signed(request: Request, client: Client, body: bytes) -> None:
    """The signature over the whole request (no I/O)."""
    headers = request.headers
    canonical = canonical_string(
        request.method, path_and_query(request), headers["x-timestamp"], headers["x-nonce"], body
    )
    presented = headers["x-signature"]
    valid = SIGNATURE.fullmatch(presented) is not None
    # During a rotation (gateway/clients.py) either of the client's two secrets signs.
    if not (valid and any(signature_matches(s, canonical, presented) for s in client.secrets_at(time.time()))):
        raise Problem(codes.BAD_SIGNATURE, "signature does not match")


def check_role(client: Client, role: str | tuple[str, ...]) -> None:
    """The caller's role is ``role`` (or one of them)."""
    allowed = (role,) if isinstance(role, str) else role
    if client.role not in allowed:
        raise Problem(codes.WRONG_ROLE, f"this endpoint is for role {' or '.join(allowed)}")


def request_nonce(request: Request, client: Client, nonce_ttl_s: int) -> Nonce:
    """This request's nonce, with a token of its own: a retried command that had already spent the nonce for this
    very request finds its own token and is not a replay."""
    return Nonce(keys.nonce(client.client_id, request.headers["x-nonce"]), os.urandom(8), nonce_ttl_s)


async def spend_nonce(redis: RedisClient, nonce: Nonce) -> None:
    """The replay guard on its own (uploads spend the nonce in their rate-limit call instead). Fails closed."""
    try:
        # SET NX GET answers the value already there: None when the nonce is fresh.
        earlier = await redis.set(nonce.key, nonce.token, nx=True, ex=nonce.ttl_s, get=True)
    except STORE_ERRORS as exc:
        raise StoreUnavailable("the replay guard cannot be checked now") from exc
    if earlier is not None and earlier != nonce.token:
        raise_replayed()


def raise_replayed() -> NoReturn:
    raise Problem(codes.REPLAYED_NONCE, "this nonce was already used")


async def check_signature(
    request: Request, client: Client, body: bytes, redis: RedisClient, nonce_ttl_s: int, role: str | tuple[str, ...]
) -> None:
    """The checks on the whole request: signature, then replay, then role.

    The nonce is spent only once the signature is good, so that nobody can burn another client's nonces.
    """
    check_signed(request, client, body)
    await spend_nonce(redis, request_nonce(request, client, nonce_ttl_s))
    check_role(client, role)


async def authenticate(
    request: Request, role: str | tuple[str, ...], clients: ClientTable, redis: RedisClient, api: Api
) -> tuple[Client, bytes]:
    """Every /v1 endpoint but the upload (which spends its nonce in its rate-limit call): the headers before
    the body is read, the body within its limit, then signature, replay and role. The caller and the body."""
    client = check_headers(request, clients, time.time(), api.clock_skew_s)
    body = await read_limited(request, api.max_body_bytes)
    await check_signature(request, client, body, redis, api.nonce_ttl_s, role)
    return client, body
