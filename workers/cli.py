"""``gateway-worker``: run the stream workers, the outbox relay to the national platform (``export``, which also
closes the days due), the verification-service and national-platform simulators; look after the dead letters,
the blacklist, the outbox's parked records, the closing of a day."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import signal
import sys
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import uvloop

from core import campaign as campaigns
from core import keys, person_key
from core.cli import entry_point
from core.hashing import name_ref
from core.metrics import merged_registry
from core.outbox import NATIONAL
from core.settings import ConfigError, Settings, from_env
from core.stores import open_redis
from workers import blacklist

# Each command imports its own modules when it runs, not every command's: a process pays about a second of
# imports to start, of which the national simulator's aiohttp server is 0.3 s and the worker's pipeline 0.4 s
# (benchmarks/startup.py; the verification simulator's lean server, workers/serve.py, imports no aiohttp).
# Every worker, simulator and relay of a deployment (and of the tests) starts so.


@entry_point
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
    nsim = sub.add_parser("national-simulator", help="serve the national monitoring platform's simulator")
    nsim.add_argument("--host", default="127.0.0.1")
    nsim.add_argument("--port", type=int, default=8095)
    sub.add_parser("export", help="relay the outbox to the national platform and close the days due, until SIGTERM")
    box = sub.add_parser("outbox", help="the outbox's parked records: list them, or send them again")
    box.add_argument("action", choices=("parked", "resend"))
    box.add_argument("ids", nargs="*", type=int, help="resend: these records (and those waiting behind them)")
    box.add_argument("--all", action="store_true", help="resend: every parked record of the destination")
    box.add_argument("--destination", default=NATIONAL)
    close = sub.add_parser("close-day", help="close a day now: its report as files, sent to the national platform")
    close.add_argument("--date", type=dt.date.fromisoformat, help="YYYY-MM-DD (default: yesterday)")
    args = parser.parse_args(argv)
    settings = from_env()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if args.command == "dead-letters":
        uvloop.run(show_dead_letters(settings, args.last))
        return 0
    if args.command == "blacklist":
        try:
            entries = blacklist.read(args.file, settings.secrets.person_secret)
        except (blacklist.BadLine, OSError) as exc:
            print(f"{args.file}: nothing loaded:\n{exc}", file=sys.stderr)
            return 2
        print(f"{args.action}: {uvloop.run(change_blacklist(settings, args.action, entries, args.by))} entries")
        return 0
    if args.command == "simulator":
        from workers import serve, simulator

        sim_at = settings.simulator
        service = simulator.Simulator(sim_at.median_ms, sim_at.p99_ms, sim_at.qps)
        # Lean and on uvloop, as the workers run: on one machine with them, the simulator's CPU is theirs lost.
        uvloop.run(serve.serve_until_stopped(service.routes, args.host, args.port))
        return 0
    if args.command == "national-simulator":
        from aiohttp import web

        from workers import national_simulator

        sim_settings = settings.national_simulator
        control = national_simulator.Control(**msgspec.structs.asdict(sim_settings))
        app = national_simulator.create_app(settings.export.client_id, export_secret(settings), control)
        web.run_app(app, host=args.host, port=args.port, print=None, access_log=None, loop=uvloop.new_event_loop())
        return 0
    campaigns.load(settings.campaign_file)  # a bad campaign is one line before any store is opened
    if args.command in ("outbox", "close-day", "export"):
        return run_export_command(settings, args)
    uvloop.run(run_worker(settings, args.burst))
    return 0


def run_export_command(settings: Settings, args: argparse.Namespace) -> int:
    """The outbox's commands and the relay itself (workers/export.py)."""
    from workers import export

    if args.command == "outbox":
        return uvloop.run(export.outbox_command(settings, args.action, args.ids, args.all, args.destination))
    if args.command == "close-day":
        return uvloop.run(export.close_day(settings, args.date))
    if args.command == "export":
        export_secret(settings)
        if settings.worker.metrics_port:
            serve_metrics(settings.worker.metrics_port, settings.metrics_dir)
        uvloop.run(export.run_export(settings))
    return 0


def export_secret(settings: Settings) -> str:
    """The key the relay signs with and the simulator checks: required, as the gateway's own keys are."""
    if len(settings.export.secret) < 16:
        raise ConfigError("GATEWAY_EXPORT_SECRET", "", "16 characters or more (the national platform's key)")
    return settings.export.secret


def serve_metrics(port: int, metrics_dir: str) -> None:
    """The worker's own /metrics, for deployments where workers do not share the gateway's metrics folder."""
    from prometheus_client import REGISTRY, start_http_server

    registry = merged_registry(metrics_dir) if metrics_dir else REGISTRY
    start_http_server(port, addr="0.0.0.0", registry=registry)


async def run_worker(settings: Settings, burst: bool, handle_signals: bool = True) -> int:
    """The worker process's wiring: open every client, run, close every client."""
    from core.metrics import start_flushing
    from workers.main import Worker, open_origin, open_sink_pool
    from workers.verify import Breaker, Pace, Verifier

    redis = open_redis(settings.stores, block_ms=settings.worker.block_ms)
    pool = await open_sink_pool(settings.stores, settings.worker.in_flight)
    verify = settings.verify
    origin = open_origin(verify)
    try:
        person_secret = settings.secrets.person_secret
        campaign = campaigns.load(settings.campaign_file)
        await person_key.check(pool, campaign.id, person_secret)
        verifier = Verifier(
            origin,
            concurrency=verify.concurrency,
            attempts=verify.call_attempts,
            breaker=Breaker(verify.breaker_failures, verify.breaker_cooldown_s),
            pace=Pace(redis, verify.qps),
            name_ref=lambda name: name_ref(person_secret, name),
        )
        worker = Worker(
            settings.worker, verify, campaign, redis, pool, verifier, settings.archive.partitions_ahead_months
        )
        if handle_signals:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, worker.stopping.set)
        if settings.worker.metrics_port:
            serve_metrics(
                settings.worker.metrics_port, settings.metrics_dir
            )  # once SIGTERM stops it gracefully: serving means up
        stop_flushing = start_flushing()  # the metrics kept in the process (workers/verify.py)
        try:
            done = await worker.run(burst=burst)
        finally:
            stop_flushing()
        logging.getLogger("workers").info("stopped after %d entries", done)
        return done
    finally:
        await origin.close()
        await pool.close()
        await redis.aclose()


async def change_blacklist(settings: Settings, action: str, entries: list[tuple[str, str, str]], by: str) -> int:
    conn = await asyncpg.connect(settings.stores.database_url)
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
    redis = open_redis(settings.stores)
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
