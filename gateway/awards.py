"""``POST /v1/draws/{id}/awards`` (role draw): the draw service records the prizes a draw awards, so that the
prize ledger (core/prizes.py) lives with the rest of the evidence and the winners' channels learn of them.

``{"awards": [{"prize_id": "<draw id>:<n>", "tier", "amount_fen", "key"}, ...]}``. All or nothing, and the same
awards sent again are the same answer. Refused: a tier or amount the campaign's draws of that kind do not have, an
invoice not in a sealed batch, a key twice (``400 invalid_award``); a prize id recorded otherwise, more prizes
than a periodic tier's count, a person over the draw's wins, a published draw (``409 award_conflict``); more prize
money than the campaign's budget, or an instant draw's daily budget (``409 over_budget``).

A prize is ``awarded`` while its winner waits to be verified again (campaign ``reverify = "winners"``), else
``payable``. An invoice reversed since the draw (a void entry, or status reversed) is awarded and withdrawn at
once, with the reversal's reason: the ledger shows both.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Annotated, Any

import asyncpg
import msgspec
import orjson
from starlette.requests import Request
from starlette.responses import Response

from core import locks, prizes
from core.campaign import Campaign
from core.prizes import Award, Prize
from core.rollup import Rollup
from gateway import auth, codes
from gateway.deps import deps
from gateway.errors import Problem


class AwardIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    prize_id: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_.-]{1,64}:[0-9]{1,9}$")]
    tier: Annotated[str, msgspec.Meta(max_length=32)]
    amount_fen: Annotated[int, msgspec.Meta(gt=0)]
    key: Annotated[str, msgspec.Meta(pattern="^[0-9]{1,32}$")]


class Awards(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    awards: Annotated[list[AwardIn], msgspec.Meta(min_length=1, max_length=1000)]


DECODE = msgspec.json.Decoder(Awards)
FED = """
SELECT i.key, i.channel, i.person, i.category, i.status, i.reason, a.batch_seq, v.key IS NOT NULL AS voided
FROM invoices i
JOIN feed_entries a ON a.key = i.key AND a.kind = 'add' AND a.batch_seq IS NOT NULL
LEFT JOIN feed_entries v ON v.key = i.key AND v.kind = 'void'
WHERE i.key = ANY($1::text[])
"""
COMMITTED = "SELECT coalesce(sum(amount_fen), 0) FROM prizes WHERE status IN ('awarded', 'payable', 'paid', 'clawback')"


async def award(request: Request) -> Response:
    d = deps(request)
    client, body = await auth.authenticate(request, "draw", d.clients, d.redis, d.settings.api)
    draw_id = request.path_params["draw_id"]
    try:
        asked = DECODE.decode(body).awards
    except msgspec.DecodeError as exc:
        raise Problem(
            codes.MALFORMED_BODY, f'{{"awards": [{{"prize_id", "tier", "amount_fen", "key"}}]}}: {exc}'
        ) from exc
    async with d.pool.acquire() as conn, conn.transaction():
        # The sealer's lock, as reversals take it: a reversal never runs beside an award it could miss.
        await conn.execute("SELECT pg_advisory_xact_lock($1)", locks.SEAL)
        draw = await conn.fetchrow(
            "SELECT kind, result IS NOT NULL AS published FROM draws WHERE draw_id = $1", draw_id
        )
        if draw is None:
            raise Problem(codes.UNKNOWN_DRAW, "no draw of this id was committed")
        _check_shape(asked, draw_id, draw["kind"], d.campaign)
        new = await _new(conn, draw_id, asked, draw["published"])
        if new:
            fed = {r["key"]: r for r in await conn.fetch(FED, [a.key for a in new])}
            await _check_limits(conn, draw_id, draw["kind"], new, fed, d.campaign)
            await _record(conn, draw_id, new, fed, d.campaign, client.client_id)
        found = await conn.fetch(
            "SELECT id, status FROM prizes WHERE id = ANY($1::text[]) ORDER BY id", [a.prize_id for a in asked]
        )
    answer = {"draw_id": draw_id, "prizes": [{"id": r["id"], "status": r["status"]} for r in found]}
    return Response(orjson.dumps(answer), media_type="application/json")


def _check_shape(asked: list[AwardIn], draw_id: str, kind: str, campaign: Campaign) -> None:
    for a in asked:
        amount = campaign.draw.tier("periodic" if kind == "periodic" else "instant", a.tier)
        if amount is None or amount != a.amount_fen:
            raise Problem(codes.INVALID_AWARD, f"{a.prize_id}: no {kind} tier {a.tier!r} of {a.amount_fen} fen")
        if not a.prize_id.startswith(draw_id + ":"):
            raise Problem(codes.INVALID_AWARD, f"{a.prize_id}: a prize id of this draw is {draw_id}:<n>")
    twice = [k for k, n in Counter(a.key for a in asked).items() if n > 1]
    if twice or len({a.prize_id for a in asked}) < len(asked):
        raise Problem(codes.INVALID_AWARD, f"a key or prize id twice in the awards ({twice[:1]})")


async def _new(conn: Any, draw_id: str, asked: list[AwardIn], published: bool) -> list[AwardIn]:
    """The awards not recorded yet; one recorded otherwise (or a key that won this draw already) is a conflict."""
    rows = await conn.fetch(
        "SELECT id, tier, amount_fen, key FROM prizes WHERE draw_id = $1 AND (id = ANY($2::text[]) OR key = ANY($3))",
        draw_id,
        [a.prize_id for a in asked],
        [a.key for a in asked],
    )
    recorded = {(r["id"], r["tier"], r["amount_fen"], r["key"]) for r in rows}
    new = [a for a in asked if (a.prize_id, a.tier, a.amount_fen, a.key) not in recorded]
    taken = {r["id"] for r in rows} | {r["key"] for r in rows}
    clash = [a.prize_id for a in new if a.prize_id in taken or a.key in taken]
    if clash:
        raise Problem(codes.AWARD_CONFLICT, f"{clash[0]}: this prize id, or its key, was awarded otherwise")
    if new and published:
        raise Problem(codes.AWARD_CONFLICT, f"draw {draw_id} is published: its awards are final")
    return new


async def _check_limits(
    conn: Any, draw_id: str, kind: str, new: list[AwardIn], fed: dict[str, asyncpg.Record], campaign: Campaign
) -> None:
    """The new awards against the feed and every limit of the campaign's draws."""
    unfed = [a.key for a in new if a.key not in fed]
    if unfed:
        raise Problem(codes.INVALID_AWARD, f"{unfed[0]}: not an invoice of a sealed feed batch")
    rows = await conn.fetch("SELECT tier, amount_fen, person FROM prizes WHERE draw_id = $1", draw_id)
    tiers = Counter([r["tier"] for r in rows] + [a.tier for a in new])
    persons = Counter([r["person"] for r in rows] + [fed[a.key]["person"] for a in new])
    rules = campaign.draw.periodic if kind == "periodic" else campaign.draw.instant
    if kind == "periodic":
        over = [t.name for t in campaign.draw.periodic.tiers if tiers[t.name] > t.count]
        if over:
            raise Problem(codes.AWARD_CONFLICT, f"tier {over[0]}: more prizes than its count in one draw")
    if persons and max(persons.values()) > rules.max_wins_per_person:
        raise Problem(codes.AWARD_CONFLICT, f"a person would win more than {rules.max_wins_per_person} in this draw")
    money = sum(a.amount_fen for a in new)
    if kind == "instant" and sum(r["amount_fen"] for r in rows) + money > campaign.draw.instant.daily_budget_fen:
        raise Problem(
            codes.OVER_BUDGET, f"over the instant draw's daily_budget_fen {campaign.draw.instant.daily_budget_fen}"
        )
    if await conn.fetchval(COMMITTED) + money > campaign.draw.budget_fen:
        raise Problem(codes.OVER_BUDGET, f"over the campaign's prize budget_fen {campaign.draw.budget_fen}")


async def _record(
    conn: Any, draw_id: str, new: list[AwardIn], fed: dict[str, asyncpg.Record], campaign: Campaign, by: str
) -> None:
    """The prizes, their ledger rows and events; those of invoices reversed since are withdrawn at once."""
    now = dt.datetime.now(dt.UTC)
    await prizes.ensure_budget(conn, campaign.draw.budget_fen, now, by)
    awards = [
        Award(
            Prize(a.prize_id, draw_id, a.tier, a.amount_fen, a.key, fed[a.key]["channel"]),
            fed[a.key]["person"],
            fed[a.key]["batch_seq"],
            fed[a.key]["category"],
        )
        for a in new
    ]
    check = campaign.reverify == "winners"
    claim_s = campaign.draw.claim_days * 86400
    await prizes.award(conn, awards, at=now, check=check, claim_s=claim_s, actor=by, rollup=Rollup.of(campaign))
    gone: dict[str, list[str]] = {}
    for a in new:
        r = fed[a.key]
        if r["voided"] or r["status"] not in ("eligible",):
            gone.setdefault(r["reason"] or "voided_in_feed", []).append(a.key)
    for cause, keys in sorted(gone.items()):
        await prizes.withdraw(conn, keys, cause, now, by)
