"""``gateway``: administration commands (migrations, clients, campaign checks, receipt keys, reconciliation, the
prize ledger).
The server itself runs under gunicorn (deploy/gunicorn.conf.py). Run from the project folder beside ``make run``,
they need no variables: they read the dev stack's ``.data/stack.env`` (core/settings.py)."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
from typing import Any

import orjson

from core import campaign as campaigns
from core.campaign import Campaign
from core.cli import entry_point
from core.rollup import Rollup
from core.settings import Settings, from_env
from core.stores import open_pool, open_redis
from gateway import clients, prize_ledger, receipts, reconcile
from gateway.migrate import migrate


@entry_point
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gateway", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply the SQL migrations of deploy/migrations")
    add = sub.add_parser("add-client", help="create a client, or replace its secret and role")
    add.add_argument("client_id")
    add.add_argument("secret")
    add.add_argument("role", choices=clients.ROLES)
    check = sub.add_parser("check-campaign", help="check a campaign file (types, ranges, contradicting rules)")
    check.add_argument("file")
    rec = sub.add_parser("reconcile", help="reconcile one day; exit status 1 when anything is unexplained")
    rec.add_argument("--date", type=dt.date.fromisoformat, help="YYYY-MM-DD (default: today, campaign time zone)")
    rec.add_argument("--limit", type=int, default=1000, help="keys listed, explained and unexplained each")
    rec.add_argument("--json", action="store_true", help="the answer of GET /v1/admin/reconciliation instead")
    new_key = sub.add_parser("new-receipt-key", help="print a new Ed25519 receipt signing key (PEM, for a key file)")
    new_key.add_argument(
        "--base64", action="store_true", help="its 32 bytes in base64, for GATEWAY_RECEIPT_SIGNING_KEY"
    )
    retire = sub.add_parser("retire-receipt-key", help="end a receipt key's validity (once no gateway signs with it)")
    retire.add_argument("kid")
    ledger = sub.add_parser("prize-ledger", help="the prize ledger's totals and checks; exit status 1 when one fails")
    ledger.add_argument("--json", action="store_true", help="the answer of GET /v1/admin/prize-ledger instead")
    ledger.add_argument(
        "--return",
        dest="give_back",
        action="store_true",
        help="once the campaign is over and no prize is outstanding, record what remains as returned",
    )
    args = parser.parse_args(argv)
    if args.command == "check-campaign":
        return check_campaign(args.file)
    if args.command == "new-receipt-key":
        pem = receipts.new_key_pem()
        sys.stdout.write(receipts.raw_base64(pem) + "\n" if args.base64 else pem.decode())
        return 0
    settings = from_env()
    # The whole configuration, as the gateway itself would check it, before any store is opened: a deployment
    # whose campaign the gateway would refuse stops at its first step, with one line.
    campaign = campaigns.load(settings.campaign_file)
    if args.command == "reconcile":
        found = asyncio.run(_reconcile(settings, campaign, args.date, max(1, args.limit)))
        print(orjson.dumps(found, option=orjson.OPT_INDENT_2).decode() if args.json else render(found))
        return 0 if found["ok"] else 1
    if args.command == "prize-ledger":
        found = asyncio.run(_prize_ledger(settings, campaign, args.give_back))
        print(orjson.dumps(found, option=orjson.OPT_INDENT_2).decode() if args.json else render_ledger(found))
        return 0 if found["ok"] else 1
    if args.command == "migrate":
        applied = asyncio.run(migrate(settings.stores.database_url))
        print("applied: " + (", ".join(applied) if applied else "nothing new"))
    elif args.command == "retire-receipt-key":
        if not asyncio.run(_retire(settings, args.kid)):
            print(f"error: no valid receipt key {args.kid}", file=sys.stderr)
            return 1
        print(f"receipt key {args.kid} retired: receipts it signed verify up to now")
    else:
        asyncio.run(_add_client(settings, args.client_id, args.secret, args.role))
        print(f"client {args.client_id} ({args.role}) saved")
    return 0


def check_campaign(path: str) -> int:
    """Every problem of a campaign file, one line each (exit status 2), or what the campaign holds (0)."""
    campaign, problems = campaigns.read(path)
    for where, what in problems:
        print(f"error: {path}: {where}: {what}" if where else f"error: {path}: {what}", file=sys.stderr)
    if campaign is None or problems:
        return 2
    print(
        f"{path}: campaign {campaign.id} ({campaign.name}), {campaign.starts} to {campaign.ends},"
        f" {campaign.dedup.shards} intake shard(s): no problem found"
    )
    return 0


async def _reconcile(settings: Settings, campaign: Campaign, day: dt.date | None, limit: int) -> dict[str, Any]:
    rollup = Rollup.of(campaign)
    redis = open_redis(settings.stores)
    pool = await open_pool(settings.stores, 1, timed=False)
    try:
        day = day or rollup.day(dt.datetime.now(dt.UTC))
        return await reconcile.reconcile(pool, redis, rollup, campaign.dedup.shards, day, limit)
    finally:
        await pool.close()
        await redis.aclose()


async def _prize_ledger(settings: Settings, campaign: Campaign, give_back: bool) -> dict[str, Any]:
    pool = await open_pool(settings.stores, 1, timed=False)
    try:
        async with pool.acquire() as conn:
            if give_back:
                today = Rollup.of(campaign).day(dt.datetime.now(dt.UTC))
                async with conn.transaction():
                    returned = await prize_ledger.give_back(conn, campaign, today, "gateway prize-ledger --return")
                if returned is None:
                    print(
                        f"not returned: the campaign ends {campaign.ends}, or prizes are outstanding", file=sys.stderr
                    )
            return await prize_ledger.summary(conn, campaign, 0, 1_000_000)
    finally:
        await pool.close()


def render_ledger(found: dict[str, Any]) -> str:
    """The prize ledger as text: totals, by tier, the checks, the verdict."""
    t = found["totals"]
    lines = [f"prize ledger of {found['campaign']} (fen):"]
    lines += [f"  {name:12} {t[name]:>14,}" for name in t]
    settled = t["paid"] + t["outstanding"] + t["remaining"] + t["returned"]
    lines.append(f"  paid + outstanding + remaining + returned = {settled:,} (budget {t['budget']:,})")
    for tier in found["by_tier"]:
        lines.append("  tier " + " ".join(f"{k}={v}" for k, v in tier.items() if k != "tier") + f" ({tier['tier']})")
    for c in found["checks"]:
        lines.append(f"  {'ok' if c['ok'] else 'FAILED':6} {c['check']}: {c['detail']}")
    lines.append(f"{len(found['movements'])} movements; " + ("OK" if found["ok"] else "NOT OK: see FAILED"))
    return "\n".join(lines)


async def _retire(settings: Settings, kid: str) -> bool:
    pool = await open_pool(settings.stores, 1, timed=False)
    try:
        return await receipts.retire(pool, kid)
    finally:
        await pool.close()


async def _add_client(settings: Settings, client_id: str, secret: str, role: str) -> None:
    pool = await open_pool(settings.stores, 1, timed=False)
    try:
        await clients.add(pool, client_id, secret, role)
    finally:
        await pool.close()


def render(found: dict[str, Any]) -> str:
    """A reconciliation as text: a line per key (where it is and why), the totals, the outbox, the verdict."""
    keys_ = found["keys"]
    lines = [
        f"reconciliation of {found['date']} ({found['timezone']}): {keys_['accepted']} keys accepted,"
        f" {keys_['explained']} explained, {keys_['unexplained']} unexplained"
    ]
    for e in found["explained"]:
        lines.append(f"  {e['key']:24} {e['where']:8} {e['status'] or '':10} {e['why']}")
    if keys_["explained"] > len(found["explained"]):
        lines.append(f"  ... {keys_['explained'] - len(found['explained'])} more explained")
    for e in found["unexplained"]:
        lines.append(f"  UNEXPLAINED {e['key']:24} {e['where']:8} {e['why']}")
    if keys_["unexplained"] > len(found["unexplained"]):
        lines.append(f"  ... {keys_['unexplained'] - len(found['unexplained'])} more unexplained")
    lines.append("totals (the daily report against the data):")
    for t in found["totals"]:
        mark = "ok" if t["ok"] else "MISMATCH"
        lines.append(f"  {t['figure']:20} report {t['report']:>10}  found {t['found']:>10}  {mark:8} {t['against']}")
    exports = found["outbox"]
    for destination, n in exports["by_destination"].items():
        lines.append(
            f"outbox ({destination}): {n['delivered']} delivered, {n['pending']} pending, {n['parked']} parked"
        )
    for r in exports["parked"]:
        lines.append(f"  parked {r['id']} {r['subject']} {r['kind']}: {r.get('reason', '')}")
    for r in exports["pending"]:
        lines.append(f"  pending {r['id']} {r['subject']} {r['kind']} since {r['created_at']}")
    lines.append("OK: every key and total is explained" if found["ok"] else "NOT OK: see UNEXPLAINED and MISMATCH")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
