"""A channel's prizes (role channel): ``GET /v1/prizes?after=ID&limit=N``, the prizes won by the invoices it
uploaded, in id order; ``POST /v1/prizes/{id}/paid`` ``{"payment_ref": "..."}``, its confirmation that it paid
one to its consumer. The change feed (GET /v1/events) announces each prize event with its ``prize_id``.

A prize may be paid once it is ``payable`` (a winner the campaign verifies again waits as ``awarded`` until
then); its confirmation is a row of the prize ledger (core/prizes.py). Confirming the same payment again is the
same answer; another ``payment_ref`` is ``409 payment_conflict``; a prize not payable is ``409
prize_not_payable``, one of another channel (or none) ``404 unknown_prize``.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import asyncpg
import msgspec
import orjson
from starlette.requests import Request
from starlette.responses import Response

from core import prizes
from core.times import iso_ms
from gateway import admit, codes
from gateway.deps import deps
from gateway.errors import Problem
from gateway.params import int_param

LIST = """
SELECT id, draw_id, tier, amount_fen, key, status, reason, awarded_at, expires_at, paid_at, payment_ref FROM prizes
WHERE channel = $1 AND id > $2 ORDER BY id LIMIT $3
"""


class Paid(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    payment_ref: Annotated[str, msgspec.Meta(pattern=r"^[\x21-\x7e]{1,64}$")]


DECODE = msgspec.json.Decoder(Paid)


async def list_prizes(request: Request) -> Response:
    d = deps(request)
    client, _ = await admit.channel_request(request, d.clients, d.redis, d.settings.api, d.ratelimiter)
    after = request.query_params.get("after", "")
    if len(after) > 80:
        raise Problem(codes.BAD_PARAMETER, "after: a prize id this list gave")
    limit = int_param(request, "limit", 100, 1, 500)
    rows = await d.pool.fetch(LIST, client.client_id, after, limit)
    found = [_prize(r) for r in rows]
    body = {"prizes": found, "next": found[-1]["id"] if len(found) == limit else None}
    return Response(orjson.dumps(body), media_type="application/json")


def _prize(r: asyncpg.Record) -> dict[str, Any]:
    found = {k: r[k] for k in ("id", "draw_id", "tier", "amount_fen", "key", "status")}
    found["awarded_at"] = iso_ms(r["awarded_at"])
    if r["status"] in prizes.OPEN:
        found["expires_at"] = iso_ms(r["expires_at"])
    if r["reason"] is not None:
        found["reason"] = r["reason"]
    if r["paid_at"] is not None:
        found |= {"paid_at": iso_ms(r["paid_at"]), "payment_ref": r["payment_ref"]}
    return found


async def paid(request: Request) -> Response:
    d = deps(request)
    client, body = await admit.channel_request(request, d.clients, d.redis, d.settings.api, d.ratelimiter)
    try:
        ref = DECODE.decode(body).payment_ref
    except msgspec.DecodeError as exc:
        raise Problem(codes.MALFORMED_BODY, f'{{"payment_ref": "1 to 64 printable ASCII characters"}}: {exc}') from exc
    prize_id = request.path_params["prize_id"]
    async with d.pool.acquire() as conn, conn.transaction():
        outcome, detail = await prizes.pay(conn, prize_id, client.client_id, ref, dt.datetime.now(dt.UTC))
    if outcome == "unknown":
        raise Problem(codes.UNKNOWN_PRIZE, "no prize of this id among this channel's invoices")
    if outcome == "conflict":
        raise Problem(codes.PAYMENT_CONFLICT, "this prize was confirmed paid before, with another payment_ref")
    if outcome == "not_payable":
        why = "it waits for its winner's re-verification" if detail == "awarded" else f"it is {detail}"
        raise Problem(codes.PRIZE_NOT_PAYABLE, f"this prize cannot be paid: {why}")
    return Response(orjson.dumps({"id": prize_id, "status": detail, "payment_ref": ref}), media_type="application/json")
