"""``gateway``: administration commands (migrations, clients). The server itself runs under gunicorn."""

from __future__ import annotations

import argparse
import asyncio
import sys

import asyncpg

from gateway import clients
from gateway.migrate import migrate
from gateway.settings import from_env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gateway", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply the SQL migrations of deploy/migrations")
    add = sub.add_parser("add-client", help="create a client, or replace its secret and role")
    add.add_argument("client_id")
    add.add_argument("secret")
    add.add_argument("role", choices=clients.ROLES)
    args = parser.parse_args(argv)
    settings = from_env()
    if args.command == "migrate":
        applied = asyncio.run(migrate(settings.database_url))
        print("applied: " + (", ".join(applied) if applied else "nothing new"))
    else:
        asyncio.run(_add_client(settings.database_url, args.client_id, args.secret, args.role))
        print(f"client {args.client_id} ({args.role}) saved")
    return 0


async def _add_client(dsn: str, client_id: str, secret: str, role: str) -> None:
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=1)
    try:
        await clients.add(pool, client_id, secret, role)
    finally:
        await pool.close()


if __name__ == "__main__":
    sys.exit(main())
