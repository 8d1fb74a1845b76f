"""``POST /v1/reversals``: an invoice cancelled by a red-letter invoice (红冲) becomes ``reversed``; if it was
already fed, a ``void`` entry follows in the feed so the draw service can claw the prize back.

A reversal may arrive before its invoice: it is recorded, and the workers apply it when the invoice commits.
An invoice reversed here is counted in the daily figures (core/rollup.py) and reported to the national platform
(core/outbox.py) in the same transaction.
The reversal takes the sealer's lock, so a pending ``add`` entry is withdrawn only between two seals and no
batch's content ever differs from its hash, and the reversal lock, exclusively, so that no sink transaction
commits the invoice unseen beside it (core/locks.py).
"""

from __future__ import annotations

from typing import Any

import asyncpg
import msgspec
import orjson
from starlette.requests import Request
from starlette.responses import Response

from core import feed, locks, outbox
from core import rollup as rollups
from core.rollup import UTC_ANY, Conn, Rollup
from gateway import admit, codes, metrics, reads
from gateway.deps import deps
from gateway.errors import Problem
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

APPLY = """
WITH recorded AS (
    INSERT INTO reversals (key, red_number, reason, channel)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])
    ON CONFLICT (key) DO NOTHING
    RETURNING key
), old AS (
    SELECT i.key, i.channel, i.status, i.batch_seq, i.person, i.amount_fen, i.issue_date, i.seller_tax_id,
           i.category, i.accepted_at
    FROM invoices i JOIN recorded USING (key)
    WHERE i.status <> 'reversed'
    FOR UPDATE OF i
), changed AS (
    UPDATE invoices i SET status = 'reversed', reason = 'reversed_by_red_invoice', updated_at = now()
    FROM old WHERE i.key = old.key
    RETURNING i.key
), events AS (
    INSERT INTO invoice_events (key, channel, status, reason, at)
    SELECT key, channel, 'reversed', 'reversed_by_red_invoice', now() FROM old
), withdrawn AS (
    DELETE FROM feed_entries f USING old
    WHERE f.key = old.key AND f.kind = 'add' AND f.batch_seq IS NULL
)
SELECT r.key, o.status AS was, o.channel, o.person, o.amount_fen, o.issue_date, o.seller_tax_id, o.category,
       o.accepted_at, now() AS at
FROM recorded r LEFT JOIN old o USING (key)
"""


async def reverse(request: Request) -> Response:
    d = deps(request)
    client, body = await admit.channel_request(request, d.clients, d.redis, d.settings.api, d.ratelimiter)
    try:
        raw = DECODE_ALL.decode(body).reversals
    except msgspec.DecodeError as exc:
        raise Problem(codes.MALFORMED_BODY, f'the body must be {{"reversals": [...]}}: {exc}') from exc
    max_count = d.settings.api.max_invoices
    if not 1 <= len(raw) <= max_count:
        raise Problem(codes.REVERSAL_COUNT, f"send 1 to {max_count} reversals")
    results: list[dict[str, Any]] = [{} for _ in raw]
    valid: dict[str, tuple[int, Reversal]] = {}
    for i, part in enumerate(raw):
        problem, rev = _check(part)
        if rev is None:
            results[i] = {"index": i, "status": "rejected", "reason": "invalid_reversal", "detail": problem}
        else:
            valid.setdefault(invoice_key(rev.number, rev.code), (i, rev))
    outcome = await apply(d.pool, client.client_id, valid, Rollup.of(d.campaign)) if valid else {}
    if valid:  # the channel's status reads see this at once, a replica or not (gateway/reads.py)
        await reads.note_write(d.pool, d.read_pool, d.redis, client.client_id)
    for key, (i, _) in valid.items():
        results[i] = {"index": i, "key": key, "status": outcome.get(key, "already_reversed")}
    metrics.REVERSALS.labels(client.client_id).inc(sum(1 for r in results if r.get("status") == "reversed"))
    return Response(orjson.dumps({"results": results}), status_code=202, media_type="application/json")


def _check(part: msgspec.Raw) -> tuple[str, Reversal | None]:
    try:
        rev = DECODE_ONE.decode(part)
    except msgspec.DecodeError as exc:
        return str(exc), None
    if rev.code is None and not DIGITAL_NUMBER.fullmatch(rev.number):
        return "number: 20 digits, or 8 digits with a code", None
    if rev.code is not None and not (LEGACY_CODE.fullmatch(rev.code) and LEGACY_NUMBER.fullmatch(rev.number)):
        return "a legacy invoice: 10- or 12-digit code and 8-digit number", None
    if not (DIGITAL_NUMBER.fullmatch(rev.red_number) or LEGACY_NUMBER.fullmatch(rev.red_number)):
        return "red_number: the red-letter invoice's number (20 or 8 digits)", None
    if len(rev.reason) > 200:
        return "reason: at most 200 characters", None
    return "", rev


async def apply(
    pool: asyncpg.Pool, channel: str, valid: dict[str, tuple[int, Reversal]], rollup: Rollup = UTC_ANY
) -> dict[str, str]:
    """Record the reversals and apply them to the invoices already committed; per key: "reversed" (done),
    "recorded" (its invoice is not committed yet: applied when it is), absent (reversed before). The invoices
    reversed now are counted in the daily figures and get their outbox records in the same transaction."""
    keys = list(valid)
    revs = [valid[k][1] for k in keys]
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1), pg_advisory_xact_lock($2)", locks.SEAL, locks.REVERSAL)
        rows = await conn.fetch(
            APPLY, keys, [r.red_number for r in revs], [r.reason for r in revs], [channel] * len(keys)
        )
        await feed.append(conn, "void", [feed.of_row("void", r) for r in rows if r["was"] == "eligible"])
        await _account(conn, [r for r in rows if r["was"] is not None], rollup)
    return {r["key"]: "reversed" if r["was"] is not None else "recorded" for r in rows}


async def _account(conn: Conn, reversed_now: list[asyncpg.Record], rollup: Rollup) -> None:
    deltas = rollups.Deltas()
    records = []
    for r in reversed_now:
        reason = "reversed_by_red_invoice"
        deltas.add(
            rollup.day(r["at"]), r["channel"], rollup.industry(r["category"]), "reversed", reason, 1, r["amount_fen"]
        )
        records.append(outbox.invoice(r["key"], r["channel"], [outbox.event("reversed", r["at"], reason)]))
    await rollups.apply(conn, deltas)
    await outbox.add(conn, records)
