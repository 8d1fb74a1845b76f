"""``gateway``: administration commands (migrations, clients, campaign checks). The server itself runs under
gunicorn (deploy/gunicorn.conf.py)."""

from __future__ import annotations

import argparse
import asyncio
import sys

from core import campaign as campaigns
from core.cli import entry_point
from core.settings import Settings, from_env
from core.stores import open_pool
from gateway import clients, receipts
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
    new_key = sub.add_parser("new-receipt-key", help="print a new Ed25519 receipt signing key (PEM, for a key file)")
    new_key.add_argument(
        "--base64", action="store_true", help="its 32 bytes in base64, for GATEWAY_RECEIPT_SIGNING_KEY"
    )
    retire = sub.add_parser("retire-receipt-key", help="end a receipt key's validity (once no gateway signs with it)")
    retire.add_argument("kid")
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
    campaigns.load(settings.campaign_file)
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


if __name__ == "__main__":
    sys.exit(main())
