"""``gateway``: administration commands (migrations, clients, console staff, campaign checks, receipt keys,
reconciliation, the prize ledger, archives and the hand-over: gateway/archive_cli.py).
The server itself runs under gunicorn (deploy/gunicorn.conf.py). Run from the project folder beside ``make run``,
they need no variables: they read the dev stack's ``.data/stack.env`` (core/settings.py)."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import getpass
import secrets
import socket
import sys
from typing import Any

import orjson

from core import campaign as campaigns
from core.campaign import Campaign
from core.cli import entry_point
from core.rollup import Rollup
from core.settings import Settings, from_env
from core.stores import open_pool, open_redis
from gateway import archive_cli, audit, clients, prize_ledger, receipts, reconcile
from gateway.console import staff
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
    rotate = sub.add_parser(
        "rotate-secret", help="give a client a new secret (printed), its old one valid until the window ends"
    )
    rotate.add_argument("client_id")
    rotate.add_argument(
        "--old-valid-for", type=float, default=86400.0, metavar="SECONDS", help="the window (default: a day)"
    )
    retire = sub.add_parser("retire-receipt-key", help="end a receipt key's validity (once no gateway signs with it)")
    retire.add_argument("kid")
    hook = sub.add_parser("set-webhook", help="push a channel's change feed to a URL (workers/webhook.py)")
    hook.add_argument("channel")
    hook.add_argument("url", nargs="?", help="http(s)://... (leave out with --clear)")
    hook.add_argument("--clear", action="store_true", help="remove the channel's webhook")
    archive_cli.add_parsers(sub)
    staff_ = sub.add_parser(
        "add-staff", help="create a console account, or give it a new password and role (password on standard input)"
    )
    staff_.add_argument("name")
    staff_.add_argument("--role", required=True, choices=staff.ROLES)
    disable = sub.add_parser("disable-staff", help="disable a console account and end its sessions")
    disable.add_argument("name")
    ledger = sub.add_parser("prize-ledger", help="the prize ledger's totals and checks; exit status 1 when one fails")
    ledger.add_argument("--json", action="store_true", help="the answer of GET /v1/admin/prize-ledger instead")
    ledger.add_argument(
        "--return",
        dest="give_back",
        action="store_true",
        help="once the campaign is over and no prize is outstanding, record what remains as returned",
    )
    args = parser.parse_args(argv)
    if args.command == "set-webhook" and (args.clear == (args.url is not None) or not _web_url(args.url)):
        parser.error("set-webhook CHANNEL URL (an http:// or https:// URL), or set-webhook CHANNEL --clear")
    if args.command == "check-campaign":
        return check_campaign(args.file)
    if args.command == "new-receipt-key":
        pem = receipts.new_key_pem()
        sys.stdout.write(receipts.raw_base64(pem) + "\n" if args.base64 else pem.decode())
        return 0
    if args.command == "archive" and args.action == "verify":  # an auditor's check: no setting, no database
        return archive_cli.verify(args.dir, args.key)
    settings = from_env()
    # The whole configuration, as the gateway itself would check it, before any store is opened: a deployment
    # whose campaign the gateway would refuse stops at its first step, with one line.
    campaign = campaigns.load(settings.campaign_file)
    if args.command in ("archive", "handover"):
        return archive_cli.run(args, settings, campaign)
    if args.command == "reconcile":
        found = asyncio.run(_reconcile(settings, campaign, args.date, max(1, args.limit)))
        print(orjson.dumps(found, option=orjson.OPT_INDENT_2).decode() if args.json else render(found))
        return 0 if found["ok"] else 1
    if args.command in ("add-staff", "disable-staff"):
        return asyncio.run(_staff(settings, args))
    if args.command == "prize-ledger":
        found = asyncio.run(_prize_ledger(settings, campaign, args.give_back))
        print(orjson.dumps(found, option=orjson.OPT_INDENT_2).decode() if args.json else render_ledger(found))
        return 0 if found["ok"] else 1
    if args.command == "migrate":
        applied = asyncio.run(migrate(settings.stores.database_url, timezone=campaign.caps.timezone))
        print("applied: " + (", ".join(applied) if applied else "nothing new"))
    elif args.command == "set-webhook":
        if not asyncio.run(_set_webhook(settings, args.channel, None if args.clear else args.url)):
            print(f"error: {args.channel} is not a channel client", file=sys.stderr)
            return 1
        print(f"webhook of {args.channel}: " + ("removed" if args.clear else args.url))
    elif args.command == "rotate-secret":
        return asyncio.run(_rotate(settings, args.client_id, args.old_valid_for))
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


def _web_url(url: str | None) -> bool:
    return url is None or (url.startswith(("http://", "https://")) and len(url) <= 2000)


async def _set_webhook(settings: Settings, channel: str, url: str | None) -> bool:
    pool = await open_pool(settings.stores, 1, timed=False)
    try:
        return await clients.set_webhook(pool, channel, url)
    finally:
        await pool.close()


async def _rotate(settings: Settings, client_id: str, old_valid_s: float) -> int:
    """The new secret on stdout (hand it to the client), the window on stderr."""
    pool = await open_pool(settings.stores, 1, timed=False)
    try:
        new = secrets.token_urlsafe(32)
        expires = await clients.rotate(pool, client_id, new, max(0.0, old_valid_s))
    except KeyError:
        print(f"error: no client {client_id}", file=sys.stderr)
        return 1
    except clients.RotationUnderWay as exc:
        print(f"error: {exc}; `gateway add-client` replaces a secret outright", file=sys.stderr)
        return 1
    finally:
        await pool.close()
    print(new)
    print(f"{client_id}: new secret in force now; the old one is valid until {expires.isoformat()}", file=sys.stderr)
    return 0


async def _add_client(settings: Settings, client_id: str, secret: str, role: str) -> None:
    pool = await open_pool(settings.stores, 1, timed=False)
    try:
        await clients.add(pool, client_id, secret, role)
    finally:
        await pool.close()


async def _staff(settings: Settings, args: argparse.Namespace) -> int:
    """``add-staff`` (the password read from standard input: never an argument, which ``ps`` would show) or
    ``disable-staff``; the audit log names the OS user and the host."""
    password = read_password() if args.command == "add-staff" else ""
    actor = audit.Actor(getpass.getuser(), "operator", "cli", socket.gethostname())
    pool = await open_pool(settings.stores, 1, timed=False)
    try:
        if args.command == "disable-staff":
            if not await staff.disable(pool, args.name, actor):
                print(f"error: no member of staff named {args.name}", file=sys.stderr)
                return 1
            print(f"staff {args.name} disabled; their sessions ended")
            return 0
        await staff.save(pool, args.name, args.role, password, actor)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        await pool.close()
    print(f"staff {args.name} ({args.role}) saved: log in at /console")
    return 0


def read_password() -> str:
    """A password from standard input: asked twice at a terminal, else its first line."""
    if sys.stdin.isatty():
        first = getpass.getpass("password: ")
        if getpass.getpass("again: ") != first:
            raise SystemExit("error: the two passwords differ")
        return first
    return sys.stdin.readline().rstrip("\r\n")


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
