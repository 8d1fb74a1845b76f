"""``gateway-worker``: run the stream workers, or the verification-service simulator."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import Any

import asyncpg
import uvloop
from aiohttp import web

from gateway import campaign as campaigns
from gateway import keys
from gateway.settings import Settings, from_env
from gateway.signing import keyed_hash
from gateway.stores import open_redis
from workers import blacklist, simulator
from workers.main import Worker, open_pool, open_session
from workers.verify import Breaker, Pace, Verifier


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gateway-worker", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="consume the intake stream until SIGINT or SIGTERM")
    run.add_argument("--burst", action="store_true", help="drain the stream, seal, and exit")
    dead = sub.add_parser("dead-letters", help="list the entries set aside as dead letters, with their reasons")
    dead.add_argument("--last", type=int, default=20, help="how many of the newest to show per shard")
    black = sub.add_parser("blacklist", help="load entries into the blacklist (黄牛库), or remove them")
    black.add_argument("action", choices=("load", "remove"))
    black.add_argument("file", type=Path, help="CSV lines kind,value,reason (workers/blacklist.py)")
    black.add_argument("--by", required=True, help="who is loading it (recorded with each entry)")
    sim = sub.add_parser("simulator", help="serve the verification-service simulator")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=8090)
    args = parser.parse_args(argv)
    settings = from_env()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if args.command == "dead-letters":
        uvloop.run(show_dead_letters(settings, args.last))
        return 0
    if args.command == "blacklist":
        try:
            entries = blacklist.read(args.file, settings.person_secret)
        except (blacklist.BadLine, OSError) as exc:
            print(f"{args.file}: nothing loaded:\n{exc}", file=sys.stderr)
            return 2
        print(f"{args.action}: {uvloop.run(change_blacklist(settings, args.action, entries, args.by))} entries")
        return 0
    if args.command == "simulator":
        app = simulator.create_app(settings.simulator_median_ms, settings.simulator_p99_ms, settings.simulator_qps)
        # On uvloop, as the workers run: on one machine with them, the simulator's CPU is theirs lost.
        web.run_app(app, host=args.host, port=args.port, print=None, access_log=None, loop=uvloop.new_event_loop())
        return 0
    uvloop.run(run_worker(settings, args.burst))
    return 0


def serve_metrics(port: int) -> None:
    """The worker's own /metrics, for deployments where workers do not share the gateway's metrics folder."""
    import os

    from prometheus_client import REGISTRY, start_http_server

    from gateway.metrics import merged_registry

    registry = merged_registry() if os.environ.get("PROMETHEUS_MULTIPROC_DIR") else REGISTRY
    start_http_server(port, addr="0.0.0.0", registry=registry)


async def run_worker(settings: Settings, burst: bool, handle_signals: bool = True) -> int:
    """The worker process's wiring: open every client, run, close every client."""
    redis = open_redis(settings)
    pool = await open_pool(settings)
    session = open_session(settings)
    try:
        verifier = Verifier(
            session,
            settings.verify_url,
            concurrency=settings.worker_verify_concurrency,
            timeout_ms=settings.verify_timeout_ms,
            attempts=settings.verify_call_attempts,
            breaker=Breaker(settings.breaker_failures, settings.breaker_cooldown_s),
            pace=Pace(redis, settings.verify_qps),
            name_ref=lambda name: keyed_hash(settings.person_secret, "name:" + name.strip()),
        )
        worker = Worker(settings, campaigns.load(settings.campaign_file), redis, pool, verifier)
        if handle_signals:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, worker.stopping.set)
        if settings.worker_metrics_port:
            serve_metrics(settings.worker_metrics_port)  # once SIGTERM stops it gracefully: serving means up
        done = await worker.run(burst=burst)
        logging.getLogger("workers").info("stopped after %d entries", done)
        return done
    finally:
        await session.close()
        await pool.close()
        await redis.aclose()


async def change_blacklist(settings: Settings, action: str, entries: list[tuple[str, str, str]], by: str) -> int:
    conn = await asyncpg.connect(settings.database_url)
    try:
        if action == "load":
            return await blacklist.load(conn, entries, by)
        removed = await conn.fetch(
            "DELETE FROM blacklist WHERE (kind, value) IN (SELECT * FROM unnest($1::text[], $2::text[]))"
            " RETURNING kind",
            [e[0] for e in entries],
            [e[1] for e in entries],
        )
        return len(removed)
    finally:
        await conn.close()


async def show_dead_letters(settings: Settings, last: int) -> None:
    redis = open_redis(settings)
    try:
        for shard in range(campaigns.load(settings.campaign_file).dedup.shards):
            letters: Any = await redis.xrevrange(keys.dead_letters(shard), count=last)
            print(f"shard {shard}: {await redis.xlen(keys.dead_letters(shard))} dead letters")
            for letter_id, fields in letters:
                entry = fields.get(b"~entry", b"?").decode()
                print(f"  {letter_id.decode()} entry {entry}: {fields.get(b'~reason', b'?').decode()}")
    finally:
        await redis.aclose()


if __name__ == "__main__":
    sys.exit(main())
