"""``dedup``: the invoice-key filters of the campaign (GATEWAY_CAMPAIGN_FILE) in Redis.

dedup ensure    create the filters if there are none; rebuild them if they are not ready
dedup rebuild   rebuild the filters from PostgreSQL (after Redis lost them); intake goes on meanwhile
dedup grow N    add a generation for N more keys, when the campaign outgrows its estimate
dedup stats     keys, size, bytes per key, estimated false-positive rate, per shard
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import asyncpg
import orjson

from core import campaign as campaigns
from core.cli import entry_point
from core.settings import Settings, from_env
from core.stores import RedisClient, open_pool, open_redis
from dedup import bloom, rebuild


@entry_point
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dedup", description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("ensure")
    sub.add_parser("rebuild")
    grow = sub.add_parser("grow")
    grow.add_argument("capacity", type=int, help="how many more keys the new generation holds")
    sub.add_parser("stats")
    args = parser.parse_args(argv)
    settings = from_env()
    campaigns.load(settings.campaign_file)  # a bad campaign is one line before any store is opened
    return asyncio.run(run(settings, args))


async def run(settings: Settings, args: argparse.Namespace) -> int:
    config = campaigns.load(settings.campaign_file).dedup
    redis = open_redis(settings.stores)
    pool = await open_pool(settings.stores, 3, timed=False)
    try:
        if args.command == "ensure":
            print(await ensure(settings, redis, pool))
        elif args.command == "rebuild":
            added = await rebuild.rebuild(redis, pool, config, settings.worker.inflight_grace_s, rebuild.ProgressBar())
            print(f"\nrebuilt: {added:,} keys")
        elif args.command == "grow":
            k, blocks = await bloom.add_generation(redis, config.shards, args.capacity, config.false_positive_rate)
            print(f"added a generation of {blocks:,} blocks per shard (k={k})")
        filters = await bloom.describe(redis, config.shards)
        if args.command == "stats":
            print(orjson.dumps(bloom.summary(filters), option=orjson.OPT_INDENT_2).decode())
            for f in filters:
                gens = ", ".join(f"{g.keys:,} keys in {g.bytes:,} B" for g in f.generations)
                print(f"shard {f.shard}: ready={f.ready} k={f.k} fpr~{f.false_positive_rate():.5f} [{gens}]")
    finally:
        await pool.close()
        await redis.aclose()
    return 0


async def ensure(settings: Settings, redis: RedisClient, pool: asyncpg.Pool) -> str:
    """Create empty filters for a new campaign; rebuild filters that are missing or not ready."""
    config = campaigns.load(settings.campaign_file).dedup
    filters = await bloom.describe(redis, config.shards)
    if all(f.ready and f.generations for f in filters):
        return "filters ready"
    # Always the full rebuild, even for a new campaign: it also adds the keys in flight, and costs little
    # when PostgreSQL is empty.
    added = await rebuild.rebuild(redis, pool, config, settings.worker.inflight_grace_s, rebuild.ProgressBar())
    return f"\nfilters rebuilt: {added:,} keys"


if __name__ == "__main__":
    sys.exit(main())
