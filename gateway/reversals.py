"""``POST /v1/reversals``: an invoice cancelled by a red-letter invoice (红冲) becomes ``reversed``; if it was
already fed, a ``void`` entry follows in the feed so the draw service can claw the prize back.

Who may: a channel reverses at once only what it submitted. Another channel's reversal is recorded and takes
effect once the workers had the tax service confirm its red-letter invoice (workers/confirm.py; the rule is
core/reversal.py): a rival channel, or a leaked secret, cannot void another channel's winners. A reversal may
arrive before its invoice: it is recorded, and applies when the invoice commits if the same channel sent both,
else once confirmed. Each item's answer (``decide``):

- ``reversed``: done now; ``recorded``: its invoice is not committed yet;
- ``pending_confirmation``: another channel's invoice, waiting for the tax service;
- ``refused``: the tax service holds no such red-letter invoice (sent again with another ``red_number``, it is
  checked again); ``already_reversed``; ``rejected`` (the item is malformed).

A fed invoice's prizes are withdrawn in the prize ledger (a clawback for one already paid). Sending a
reversal again answers where it stands. An invoice reversed here is counted in the daily figures
(core/rollup.py) and reported to the national platform (core/outbox.py) in the same transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import asyncpg
import msgspec
import orjson
from starlette.requests import Request
from starlette.responses import Response

from core import reversal
from core.rollup import UTC_ANY, Rollup
from gateway import admit, codes, metrics, reads
from gateway.deps import deps
from gateway.errors import Problem
from gateway.parse import UNDECODABLE
from gateway.rules import DIGITAL_NUMBER, LEGACY_CODE, LEGACY_NUMBER
from gateway.validate import invoice_key


class Reversal(msgspec.Struct, frozen=True):
    number: str
    red_number: str
    code: str | None = None
    reason: str = ""


class Reversals(msgspec.Struct, frozen=True):
    reversals: list[msgspec.Raw]


DECODE_ALL = msgspec.json.Decoder(Reversals)
DECODE_ONE = msgspec.json.Decoder(Reversal)

RECORD = """
WITH asked AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) AS a(key, red_number, reason)
), recorded AS (
    -- One reversal per key and channel; a refused one comes back to life with another red-letter number.
    INSERT INTO reversals (key, red_number, reason, channel)
    SELECT key, red_number, reason, $4 FROM asked
    ON CONFLICT (key, channel) DO UPDATE
    SET red_number = excluded.red_number, reason = excluded.reason, at = now(), refused_at = NULL, checks = 0,
        check_after = now()
    WHERE reversals.refused_at IS NOT NULL AND reversals.red_number <> excluded.red_number
    RETURNING key
)
SELECT a.key, i.channel AS owner, i.status, r.key IS NOT NULL AS recorded_now,
       p.confirmed_at IS NOT NULL AS confirmed, p.refused_at IS NOT NULL AS refused
FROM asked a
LEFT JOIN invoices i USING (key)
LEFT JOIN recorded r USING (key)
LEFT JOIN reversals p ON p.key = a.key AND p.channel = $4
"""


def decide(channel: str, row: Mapping[str, Any] | asyncpg.Record) -> str:
    """One reversal's answer from what ``RECORD`` found (``reversed`` meaning: take effect now)."""
    if row["status"] == "reversed":
        return "already_reversed"
    if row["owner"] == channel or (row["owner"] is not None and row["confirmed"]):
        return "reversed"
    if row["owner"] is None:
        return "recorded"
    if row["refused"] and not row["recorded_now"]:
        return "refused"
    return "pending_confirmation"


async def reverse(request: Request) -> Response:
    d = deps(request)
    client, body = await admit.channel_request(request, d.clients, d.redis, d.settings.api, d.ratelimiter)
    try:
        raw = DECODE_ALL.decode(body).reversals
    except UNDECODABLE as exc:
        raise Problem(codes.MALFORMED_BODY, f'the body must be {{"reversals": [...]}}: {exc}') from exc
    max_count = d.settings.api.max_invoices
    if not 1 <= len(raw) <= max_count:
        raise Problem(codes.REVERSAL_COUNT, f"send 1 to {max_count} reversals")
    results: list[dict[str, Any]] = [{} for _ in raw]
    valid: dict[str, tuple[int, Reversal]] = {}
    asked: list[tuple[int, str]] = []  # every valid reversal, a key named twice included (its first one applies)
    for i, part in enumerate(raw):
        problem, rev = _check(part)
        if rev is None:
            results[i] = {"index": i, "status": "rejected", "reason": "invalid_reversal", "detail": problem}
        else:
            key = invoice_key(rev.number, rev.code)
            valid.setdefault(key, (i, rev))
            asked.append((i, key))
    outcome = await apply(d.pool, client.client_id, valid, Rollup.of(d.campaign)) if valid else {}
    if valid:  # the channel's status reads see this at once, a replica or not (gateway/reads.py)
        await reads.note_write(d.pool, d.read_pool, d.redis, client.client_id)
    for i, key in asked:
        results[i] = {"index": i, "key": key, "status": outcome[key]}
    metrics.REVERSALS.labels(client.client_id).inc(sum(1 for r in results if r.get("status") == "reversed"))
    return Response(orjson.dumps({"results": results}), status_code=202, media_type="application/json")


def _check(part: msgspec.Raw) -> tuple[str, Reversal | None]:
    try:
        rev = DECODE_ONE.decode(part)
    except UNDECODABLE as exc:
        return str(exc), None
    if rev.code is None and not DIGITAL_NUMBER.fullmatch(rev.number):
        return "number: 20 digits, or 8 digits with a code", None
    if rev.code is not None and not (LEGACY_CODE.fullmatch(rev.code) and LEGACY_NUMBER.fullmatch(rev.number)):
        return "a legacy invoice: 10- or 12-digit code and 8-digit number", None
    if not (DIGITAL_NUMBER.fullmatch(rev.red_number) or LEGACY_NUMBER.fullmatch(rev.red_number)):
        return "red_number: the red-letter invoice's number (20 or 8 digits)", None
    if len(rev.reason) > 200 or "\x00" in rev.reason:  # PostgreSQL's text holds no NUL
        return "reason: at most 200 characters, none of them NUL", None
    return "", rev


async def apply(
    pool: asyncpg.Pool, channel: str, valid: dict[str, tuple[int, Reversal]], rollup: Rollup = UTC_ANY
) -> dict[str, str]:
    """Record the reversals and apply those that may take effect now (``decide``); the answer per key. The
    invoices reversed now are counted in the daily figures and get their outbox records in the same
    transaction."""
    keys = list(valid)
    revs = [valid[k][1] for k in keys]
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(reversal.LOCKS, *reversal.LOCK_IDS)
        rows = await conn.fetch(RECORD, keys, [r.red_number for r in revs], [r.reason for r in revs], channel)
        answers = {r["key"]: decide(channel, r) for r in rows}
        await reversal.take_effect(conn, [k for k, a in answers.items() if a == "reversed"], rollup, channel)
    return answers
