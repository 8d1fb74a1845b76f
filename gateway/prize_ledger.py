"""The prize ledger's totals and their reconciliation (资金台账): ``GET /v1/admin/prize-ledger`` (roles auditor and
admin) and ``gateway prize-ledger`` (exit status 1 when a check fails; ``--return`` records what remains once the
campaign is over). No HTTP here: the command imports this module alone.

Totals, from the ledger's rows (core/prizes.py), in fen: ``budget``; ``awarded``, ``withdrawn`` (reversed before
payment), ``expired`` (unclaimed), ``paid``, ``clawback`` (paid, then reversed: to recover), ``returned``;
``outstanding`` = awarded - withdrawn - expired - paid (prizes not settled yet); ``remaining`` = budget - paid -
outstanding - returned (what goes back at the campaign's end). So paid + outstanding + remaining + returned is the
budget, whatever happens; the checks make each term true to the prizes themselves:

- the ledger's budget is the campaign's ``[draw] budget_fen``, and nothing is committed beyond it;
- each prize's movements are a life it can have (awarded; then withdrawn, expired, or paid, then perhaps
  clawback), each of the prize's tier and amount, and its status is where that life ended;
- per status, the prizes' amounts equal the ledger's totals (outstanding, paid, withdrawn, expired, clawback);
- per draw, no periodic tier has more prizes than its count, no instant draw more money than its daily budget,
  no person more wins than the campaign allows; a published result's winners are the draw's prizes.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

import asyncpg
import orjson

from core.campaign import Campaign
from core.rollup import Conn
from core.times import iso_ms

LIVES = {
    "awarded": "awarded",
    "payable": "awarded",
    "paid": "awarded,paid",
    "withdrawn": "awarded,withdrawn",
    "expired": "awarded,expired",
    "clawback": "awarded,paid,clawback",
}
BY_MOVEMENT = "SELECT movement, tier, sum(amount_fen)::bigint AS amount, count(*) AS n FROM prize_ledger GROUP BY 1, 2"
BY_STATUS = "SELECT status, sum(amount_fen)::bigint AS amount FROM prizes GROUP BY status"
LIVES_SQL = """
SELECT p.id, p.status, coalesce(string_agg(l.movement, ',' ORDER BY l.id), '') AS moves,
       coalesce(bool_and(l.amount_fen = p.amount_fen AND l.tier = p.tier), true) AS amounts_agree
FROM prizes p LEFT JOIN prize_ledger l ON l.prize_id = p.id
GROUP BY p.id, p.status ORDER BY p.id
"""
DRAWS = """
SELECT d.draw_id, d.kind, d.result, p.tier, p.person, p.id, p.amount_fen, p.key
FROM draws d LEFT JOIN prizes p USING (draw_id) ORDER BY d.draw_id, p.id
"""
MOVEMENTS = """
SELECT id, at, movement, prize_id, tier, amount_fen, cause, actor FROM prize_ledger WHERE id > $1 ORDER BY id LIMIT $2
"""


async def summary(conn: Conn, campaign: Campaign, after: int = 0, limit: int = 100) -> dict[str, Any]:
    """The ledger's totals, by tier, its checks (``ok`` when all hold) and a page of its movements."""
    rows = await conn.fetch(BY_MOVEMENT)
    totals, by_tier = _totals(rows)
    status = {r["status"]: r["amount"] for r in await conn.fetch(BY_STATUS)}
    checks = [
        _check(
            "budget", totals["budget"] == campaign.draw.budget_fen or not rows, f"campaign {campaign.draw.budget_fen}"
        ),
        _check("within budget", totals["remaining"] >= 0, f"remaining {totals['remaining']}"),
        *_agree(totals, status),
        await _lives(conn),
        *await _draws(conn, campaign),
    ]
    movements = await conn.fetch(MOVEMENTS, after, limit)
    page = [{**dict(m), "at": iso_ms(m["at"])} for m in movements]
    return {
        "campaign": campaign.id,
        "ok": all(c["ok"] for c in checks),
        "totals": totals,
        "by_tier": by_tier,
        "checks": checks,
        "movements": page,
        "next": page[-1]["id"] if len(page) == limit else None,
    }


def _totals(rows: list[asyncpg.Record]) -> tuple[dict[str, int], list[dict[str, Any]]]:
    sums: dict[str, int] = defaultdict(int)
    tiers: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for r in rows:
        sums[r["movement"]] += r["amount"]
        if r["tier"]:
            tiers[r["tier"]][f"{r['movement']}_fen"] += r["amount"]
            if r["movement"] == "awarded":
                tiers[r["tier"]]["awarded"] += r["n"]
    totals = {m: sums[m] for m in ("budget", "awarded", "withdrawn", "expired", "paid", "clawback", "returned")}
    totals["outstanding"] = totals["awarded"] - totals["withdrawn"] - totals["expired"] - totals["paid"]
    totals["remaining"] = totals["budget"] - totals["paid"] - totals["outstanding"] - totals["returned"]
    return totals, [{"tier": t, **v} for t, v in sorted(tiers.items())]


def _check(name: str, ok: bool, detail: str) -> dict[str, Any]:
    return {"check": name, "ok": bool(ok), "detail": detail}


def _agree(totals: dict[str, int], status: dict[str, int]) -> list[dict[str, Any]]:
    """The ledger's totals against the prizes' amounts by status."""
    pairs = {
        "outstanding": status.get("awarded", 0) + status.get("payable", 0),
        "paid": status.get("paid", 0) + status.get("clawback", 0),
        "withdrawn": status.get("withdrawn", 0),
        "expired": status.get("expired", 0),
        "clawback": status.get("clawback", 0),
    }
    return [_check(f"{n} = prizes", totals[n] == v, f"ledger {totals[n]}, prizes {v}") for n, v in pairs.items()]


async def _lives(conn: Conn) -> dict[str, Any]:
    """Each prize's movements against its status."""
    wrong = [
        f"{r['id']} {r['status']}: {r['moves'] or 'no movement'}"
        for r in await conn.fetch(LIVES_SQL)
        if LIVES[r["status"]] != r["moves"] or not r["amounts_agree"]
    ]
    return _check("each prize's movements", not wrong, "; ".join(wrong[:5]) or "every prize")


async def _draws(conn: Conn, campaign: Campaign) -> list[dict[str, Any]]:
    """Every draw within its limits, and its published winners its prizes."""
    wrong: list[str] = []
    by_draw: dict[str, list[asyncpg.Record]] = defaultdict(list)
    for r in await conn.fetch(DRAWS):
        by_draw[r["draw_id"]].append(r)
    for draw_id, rows in by_draw.items():
        won = [r for r in rows if r["id"] is not None]
        wrong += [f"{draw_id}: {w}" for w in _over(rows[0]["kind"], won, campaign)]
        if rows[0]["result"] is not None:
            published = {(w["prize_id"], w["key"]) for w in orjson.loads(rows[0]["result"])["winners"]}
            if published != {(r["id"], r["key"]) for r in won}:
                wrong.append(f"{draw_id}: its published winners are not its prizes")
    return [_check("draws within their rules", not wrong, "; ".join(wrong[:5]) or f"{len(by_draw)} draws")]


def _over(kind: str, won: list[asyncpg.Record], campaign: Campaign) -> list[str]:
    rules = campaign.draw.periodic if kind == "periodic" else campaign.draw.instant
    persons: dict[str, int] = defaultdict(int)
    tiers: dict[str, int] = defaultdict(int)
    for r in won:
        persons[r["person"]] += 1
        tiers[r["tier"]] += 1
    found = [f"a person won {n}" for n in persons.values() if n > rules.max_wins_per_person]
    if kind == "periodic":
        found += [
            f"tier {t.name}: {tiers[t.name]} prizes" for t in campaign.draw.periodic.tiers if tiers[t.name] > t.count
        ]
    elif sum(r["amount_fen"] for r in won) > campaign.draw.instant.daily_budget_fen:
        found.append("over the daily budget")
    return found


async def give_back(conn: Conn, campaign: Campaign, today: dt.date, actor: str) -> int | None:
    """Record what remains as ``returned``, once the campaign is over and no prize is outstanding; None when it
    cannot be yet (or nothing remains: 0)."""
    if today <= campaign.ends:
        return None
    totals, _ = _totals(await conn.fetch(BY_MOVEMENT))
    if totals["outstanding"]:
        return None
    if totals["remaining"] > 0:
        await conn.execute(
            "INSERT INTO prize_ledger (movement, amount_fen, cause, actor) VALUES ('returned', $1, $2, $3)",
            totals["remaining"],
            f"the campaign ended {campaign.ends}: what remained goes back",
            actor,
        )
    return totals["remaining"]
