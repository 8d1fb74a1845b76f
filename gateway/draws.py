"""The draws, on the gateway's side (docs/draw.md): the draw service (role draw) commits each draw's seed before
its window closes, and publishes its signed result once drawn; anyone may read both back. The gateway keeps them
with the rest of the evidence, checks what it can (the window, the commitment, the secret, the signature, the
window's last batch, the winners against the awards recorded), and passes the result to the national platform.

``POST /v1/draws`` ``{"draw_id", "kind", "window": {"from", "to"}, "commitment", "public_key", "randomness"}``:
``commitment`` is the hex SHA-256 of the secret, ``public_key`` the draw's Ed25519 key (base64url, as a JWK's
``x``), ``randomness`` names the public randomness the seed will take (a drand round, a lottery's numbers), if
any. The gateway records when, and how far the feed went then (``feed_head_seq``). Too late (``to`` passed; for
an instant draw, ``from``) is ``409 window_closed``; the same id again is the same answer, or ``409
draw_conflict`` if anything differs.

``POST /v1/draws/{id}/result``: the result document (draw/result.py), once; ``GET /v1/draws/{id}``: the draw as
recorded, with its result once published.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Annotated, Any, Literal

import asyncpg
import msgspec
import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from starlette.requests import Request
from starlette.responses import Response

from core import feed, locks, outbox, prizes
from core.campaign import Campaign
from core.times import iso_ms
from gateway import admit, auth, codes
from gateway.deps import deps
from gateway.errors import Problem
from gateway.receipts import unb64url

DRAW_ID = r"^[A-Za-z0-9_.-]{1,64}$"
RESULT_FORMAT = "prize-draw-result/1"


class Window(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    from_: dt.datetime = msgspec.field(name="from")
    to: dt.datetime


class Commit(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    draw_id: Annotated[str, msgspec.Meta(pattern=DRAW_ID)]
    kind: Literal["periodic", "instant"]
    window: Window
    commitment: Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{64}$")]
    public_key: Annotated[str, msgspec.Meta(pattern="^[A-Za-z0-9_-]{43}$")]
    randomness: Annotated[str, msgspec.Meta(max_length=200)] = ""


DECODE = msgspec.json.Decoder(Commit)
RECORDED = (
    "draw_id",
    "kind",
    "window_from",
    "window_to",
    "commitment",
    "public_key",
    "randomness",
    "committed_by",
    "committed_at",
    "feed_head_seq",
    "result",
    "published_at",
)
READ = f"SELECT {', '.join(RECORDED)} FROM draws WHERE draw_id = $1"
PUBLISH = (
    f"UPDATE draws SET result = $2::jsonb, published_at = now() WHERE draw_id = $1 RETURNING {', '.join(RECORDED)}"
)


async def commit(request: Request) -> Response:
    """Record a draw's commitment, before its window closes."""
    d = deps(request)
    client, body = await auth.authenticate(request, "draw", d.clients, d.redis, d.settings.api)
    c = _commitment(body, d.campaign)
    async with d.pool.acquire() as conn, conn.transaction():
        # The sealer's lock: no batch is sealed meanwhile, so feed_head_seq is what the feed held at the commitment.
        await conn.execute("SELECT pg_advisory_xact_lock($1)", locks.SEAL)
        row = await conn.fetchrow(READ, c.draw_id)
        if row is None:
            row = await _record(conn, c, client.client_id, d.campaign)
        elif _differs(row, c):
            raise Problem(codes.DRAW_CONFLICT, f"draw {c.draw_id} was committed before with other values")
    return _answer(row)


def _commitment(body: bytes, campaign: Campaign) -> Commit:
    try:
        c = DECODE.decode(body)
    except msgspec.DecodeError as exc:
        raise Problem(codes.INVALID_DRAW, f"a draw's commitment: {exc}") from exc
    if c.window.from_.tzinfo is None or c.window.to.tzinfo is None or c.window.to <= c.window.from_:
        raise Problem(codes.INVALID_DRAW, "window: from and to with their time zones, from before to")
    tiers = campaign.draw.periodic.tiers if c.kind == "periodic" else campaign.draw.instant.tiers
    if not tiers:
        raise Problem(codes.INVALID_DRAW, f"the campaign has no {c.kind} prize tiers ([draw.{c.kind}] tiers)")
    # Kept to the millisecond, as every time the API gives: the window a result names is then the one recorded.
    window = Window(_to_ms(c.window.from_), _to_ms(c.window.to))
    return msgspec.structs.replace(c, window=window)


def _to_ms(t: dt.datetime) -> dt.datetime:
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


async def _record(conn: Any, c: Commit, by: str, campaign: Campaign) -> asyncpg.Record:
    now = await conn.fetchval("SELECT now()")
    closes = c.window.from_ if c.kind == "instant" else c.window.to
    if closes <= now:
        what = "opened" if c.kind == "instant" else "closed"
        raise Problem(codes.WINDOW_CLOSED, f"the window {what} at {iso_ms(closes)}: commit before it {what}")
    head = await conn.fetchval("SELECT coalesce(max(seq), 0) FROM feed_batches")
    row = await conn.fetchrow(
        "INSERT INTO draws (draw_id, kind, window_from, window_to, commitment, public_key, randomness, committed_by,"
        " committed_at, feed_head_seq) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        f" RETURNING {', '.join(RECORDED)}",
        c.draw_id,
        c.kind,
        c.window.from_,
        c.window.to,
        c.commitment,
        c.public_key,
        c.randomness,
        by,
        now,
        head,
    )
    await prizes.ensure_budget(conn, campaign.draw.budget_fen, now, by)
    return row  # type: ignore[no-any-return]


def _differs(row: asyncpg.Record, c: Commit) -> bool:
    asked = (c.kind, c.window.from_, c.window.to, c.commitment, c.public_key, c.randomness)
    return asked != tuple(
        row[k] for k in ("kind", "window_from", "window_to", "commitment", "public_key", "randomness")
    )


def _answer(row: asyncpg.Record) -> Response:
    return Response(orjson.dumps(described(row)), media_type="application/json")


def described(row: asyncpg.Record) -> dict[str, Any]:
    """A draw as the API gives it."""
    return {
        "draw_id": row["draw_id"],
        "kind": row["kind"],
        "window": {"from": iso_ms(row["window_from"]), "to": iso_ms(row["window_to"])},
        "commitment": row["commitment"],
        "public_key": row["public_key"],
        "randomness": row["randomness"],
        "committed_by": row["committed_by"],
        "committed_at": iso_ms(row["committed_at"]),
        "feed_head_seq": row["feed_head_seq"],
        "result": None if row["result"] is None else orjson.loads(row["result"]),
        "published_at": None if row["published_at"] is None else iso_ms(row["published_at"]),
    }


async def read(request: Request) -> Response:
    """``GET /v1/draws/{id}``: any role."""
    d = deps(request)
    await admit.any_role(request, d.clients, d.redis, d.settings.api, d.ratelimiter)
    row = await d.pool.fetchrow(READ, request.path_params["draw_id"])
    if row is None:
        raise Problem(codes.UNKNOWN_DRAW, "no draw of this id was committed")
    return _answer(row)


async def publish(request: Request) -> Response:
    """``POST /v1/draws/{id}/result``: the signed result, checked against the draw and its awards, kept once."""
    d = deps(request)
    _, body = await auth.authenticate(request, "draw", d.clients, d.redis, d.settings.api)
    try:
        result = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Problem(codes.MALFORMED_BODY, f"a result document (JSON): {exc}") from exc
    if not isinstance(result, dict):
        raise Problem(codes.MALFORMED_BODY, "a result document: a JSON object")
    async with d.pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(READ + " FOR UPDATE", request.path_params["draw_id"])
        if row is None:
            raise Problem(codes.UNKNOWN_DRAW, "no draw of this id was committed")
        if row["result"] is not None:
            if feed.text(orjson.loads(row["result"])) != feed.text(result):
                raise Problem(codes.RESULT_CONFLICT, "this draw's result was published before, and differs")
            return _answer(row)
        problem = await _misfit(conn, row, result)
        if problem:
            raise Problem(codes.INVALID_RESULT, problem)
        published = await conn.fetchrow(PUBLISH, row["draw_id"], orjson.dumps(result).decode())
        assert published is not None
        await outbox.add(conn, [outbox.draw(summary(result, published["published_at"]))])
    return _answer(published)


def summary(result: dict[str, Any], published_at: dt.datetime) -> dict[str, Any]:
    """A result in brief, for the national platform."""
    winners = result["winners"]
    return {
        "draw_id": result["draw_id"],
        "kind": result["kind"],
        "window": result["window"],
        "seed": result["seed"],
        "result_sha256": hashlib.sha256(feed.text(result).encode()).hexdigest(),
        "winners": len(winners),
        "prize_amount_fen": sum(w["amount_fen"] for w in winners),
        "published_at": iso_ms(published_at),
    }


async def _misfit(conn: Any, row: asyncpg.Record, result: dict[str, Any]) -> str | None:
    """What does not fit the recorded draw in a result, if anything (the first thing found)."""
    try:
        window = result["window"]
        found = (result["format"], result["draw_id"], result["kind"], result["commitment"])
        expected = (RESULT_FORMAT, row["draw_id"], row["kind"], row["commitment"])
        if found != expected:
            return f"format, draw_id, kind and commitment must be {expected}, not {found}"
        if (dt.datetime.fromisoformat(window["from"]), dt.datetime.fromisoformat(window["to"])) != (
            row["window_from"],
            row["window_to"],
        ):
            return "the window is not the one committed"
        if hashlib.sha256(bytes.fromhex(result["secret"])).hexdigest() != row["commitment"]:
            return "the secret's SHA-256 is not the commitment"
        if not _signed(result, row["public_key"]):
            return "the signature is not the draw key's over the result (docs/draw.md)"
        return await _unfed(conn, row, window) or await _unawarded(conn, row["draw_id"], result["winners"])
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        return f"not a result document ({type(exc).__name__}: {exc})"


def _signed(result: dict[str, Any], public_key: str) -> bool:
    signature = result["signature"]
    if signature.get("alg") != "Ed25519" or signature.get("public_key") != public_key:
        return False
    unsigned = {k: v for k, v in result.items() if k != "signature"}
    try:
        key = Ed25519PublicKey.from_public_bytes(unb64url(public_key))
        key.verify(unb64url(signature["value"]), feed.text(unsigned).encode())
    except (InvalidSignature, ValueError):
        return False
    return True


async def _unfed(conn: Any, row: asyncpg.Record, window: dict[str, Any]) -> str | None:
    """The window's last batch, as the result names it, against the feed."""
    last = await conn.fetchrow(
        "SELECT seq, sha256 FROM feed_batches WHERE sealed_at < $1 ORDER BY seq DESC LIMIT 1", row["window_to"]
    )
    named = (window["last_seq"], window["last_sha256"])
    if last is None or named != (last["seq"], last["sha256"]):
        return f"the window's last batch is {None if last is None else tuple(last)}, not {named}"
    return None


async def _unawarded(conn: Any, draw_id: str, winners: list[dict[str, Any]]) -> str | None:
    """The result's winners against the prizes recorded for the draw (POST /v1/draws/{id}/awards)."""
    rows = await conn.fetch("SELECT id, tier, amount_fen, key FROM prizes WHERE draw_id = $1", draw_id)
    recorded = {(r["id"], r["tier"], r["amount_fen"], r["key"]) for r in rows}
    published = {(w["prize_id"], w["tier"], w["amount_fen"], w["key"]) for w in winners}
    if recorded != published:
        missing, extra = sorted(published - recorded), sorted(recorded - published)
        return f"the winners are not the awards recorded: not awarded {missing[:3]}, not published {extra[:3]}"
    return None
