"""Where a single-invoice upload's CPU goes, stage by stage (issue 19): ``make bench-stages``.

    .venv/bin/python benchmarks/single_stages.py [--requests 4000] [--rounds 5] [--invoices 1] [--concurrency 32]

The gateway app runs in this process, against the real Redis and PostgreSQL of a stack of its own, and is
called directly as an ASGI app (no HTTP server: the server's own cost per request is the bare app's, which
`make bench` measures), ``--concurrency`` requests at a time. "whole request" is this thread's CPU time over a
round divided by its requests. Each stage that never awaits is timed by wrapping the function the upload calls:
it holds the CPU from its start to its end. "the rest" is the whole less those: Starlette's layers, the
middleware, the route itself and the Redis round trips (packing each command, the event loop waking on its
answer, parsing it), whose CPU cannot be told apart by a clock while other requests run in their awaits. The
access log writes to a file, as it does under the dev stack.

Writes benchmarks/results/stages-<invoices>.json and .md: the median over rounds of µs of CPU per request.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import bench_stack, commit, save  # noqa: E402
from benchmarks.loadgen import Invoices, signed  # noqa: E402
from benchmarks.pipeline_bench import CHANNEL, NO_SHEDDING, SECRET, bench_campaign  # noqa: E402

SPENT: dict[str, int] = defaultdict(int)  # ns of CPU per stage, this round
REST = "the rest: Starlette, middleware, route, the Redis round trips"


def timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` (a stage that never awaits) adding its time to SPENT[name]. The clock is the wall clock, a vDSO
    call (the thread's CPU clock is a system call: read around every stage it was a quarter of py-spy's
    samples); a stage that does not await holds the CPU from its start to its end, so its time is its CPU."""
    clock = time.perf_counter_ns

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        started = clock()
        try:
            return fn(*args, **kwargs)
        finally:
            SPENT[name] += clock() - started

    return run


def instrument() -> list[str]:
    """Wrap each stage the upload calls; returns their names in the order a request meets them."""
    from gateway import accesslog, auth, parse, upload, validate
    from gateway import tally as tallies
    from gateway.receipts import Signer

    stages: list[tuple[str, Any, str]] = [
        ("auth: headers and client", auth, "check_headers"),
        ("auth: signature", auth, "check_signed"),
        ("auth: nonce", auth, "request_nonce"),
        ("parse: decode", parse, "decode"),
        ("validate", validate, "validate"),
        ("tally", tallies, "pre_claim"),
        ("enqueue: receipts", Signer, "receipts"),
        ("metrics: invoice outcomes", upload, "_count"),
        ("access log line", accesslog.LOG, "line"),
    ]
    for name, owner, attr in stages:
        setattr(owner, attr, timed(name, getattr(owner, attr)))
    return [name for name, _, _ in stages]


async def measure(env: dict[str, str], args: argparse.Namespace, log: IO[bytes]) -> dict[str, Any]:
    os.environ.update(env)  # before prometheus_client is imported: multiprocess values, as under gunicorn
    from core import settings as config
    from gateway import accesslog, metrics
    from gateway.app import create_app

    names = instrument()
    app = create_app(config.from_env(env))
    accesslog.LOG.stream = log
    inv = Invoices()
    rounds: list[dict[str, float]] = []
    failed_open = 0  # requests whose rate limits failed open (Redis slower than their timeout): a void run
    async with app.router.lifespan_context(app) as opened:
        state = dict(opened or {})
        for r in range(args.rounds + 1):  # the first round warms up and is not counted
            bodies = [inv.body(args.invoices) for _ in range(args.requests)]
            requests = [(signed(CHANNEL, SECRET, b), b) for b in bodies]
            SPENT.clear()
            stats0 = await redis_time(state)
            opened = metrics.RATELIMIT_FAIL_OPEN._value.get()
            total_ns, statuses = await one_round(app, state, requests, args.concurrency)
            failed_open += metrics.RATELIMIT_FAIL_OPEN._value.get() - opened if r else 0
            if statuses.get(202) != args.requests:
                raise SystemExit(f"round {r}: answers {dict(statuses)}, not {args.requests} x 202")
            if r:
                per = {name: SPENT[name] / args.requests / 1000 for name in names}
                whole = total_ns / args.requests / 1000
                per[REST] = whole - sum(per.values())  # before the Redis rows below, which are not this CPU
                per["whole request"] = whole
                calls, usec = (a - b for a, b in zip(await redis_time(state), stats0, strict=True))
                per["Redis: commands per request (scripts' own calls included)"] = calls / args.requests
                per["Redis: its own µs per request (INFO commandstats)"] = usec / args.requests
                rounds.append(per)
    accesslog.LOG.flush()
    return {
        "requests_per_round": args.requests,
        "invoices_per_request": args.invoices,
        "concurrency": args.concurrency,
        "limits_failed_open": failed_open,
        "rounds": rounds,
        "median_us": {k: statistics.median(r[k] for r in rounds) for k in rounds[0]},
    }


async def redis_time(state: dict[str, Any]) -> tuple[int, int]:
    """Redis's count of commands run and of µs spent in them, all commands together (INFO commandstats)."""
    stats = await state["deps"].redis.info("commandstats")
    return sum(v["calls"] for v in stats.values()), sum(v["usec"] for v in stats.values())


async def one_round(
    app: Any, state: dict[str, Any], requests: list[tuple[dict[str, str], bytes]], concurrency: int
) -> tuple[int, dict[int, int]]:
    """The requests sent ``concurrency`` at a time; this thread's CPU time (ns) and the count of each status."""
    statuses: dict[int, int] = defaultdict(int)
    queue = iter(requests)

    async def client() -> None:
        for headers, body in queue:
            statuses[await call(app, state, headers, body)] += 1

    started = time.thread_time_ns()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return time.thread_time_ns() - started, statuses


async def call(app: Any, state: dict[str, Any], headers: dict[str, str], body: bytes) -> int:
    """One request straight into the ASGI app; its status."""
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    raw.append((b"content-length", str(len(body)).encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/invoices",
        "raw_path": b"/v1/invoices",
        "query_string": b"",
        "root_path": "",
        "headers": raw,
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8080),
        "state": dict(state),
    }
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


def markdown(result: dict[str, Any]) -> str:
    rows = ["| stage | µs of CPU per request (median) | rounds |", "| --- | --- | --- |"]
    for name, median in result["median_us"].items():
        each = " / ".join(f"{r[name]:.0f}" for r in result["rounds"])
        rows.append(f"| {name} | {median:.1f} | {each} |")
    head = (
        f"{result['invoices_per_request']}-invoice requests, {result['requests_per_round']:,} a round,"
        f" {result['concurrency']} at a time (the limits failed open {result['limits_failed_open']:g} times),"
        f" in one process (no HTTP server), at {result['commit']}.\n\n"
    )
    return head + "\n".join(rows) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--invoices", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=32, help="requests at once")
    args = parser.parse_args()
    import uvloop

    campaign = bench_campaign(ROOT / ".data" / "bench-campaign")
    with bench_stack(False, campaign=campaign, extra_env=NO_SHEDDING, name="bench-stages") as stack:
        stack.ensure_keys()  # the receipts' signing key, as start_gateway makes it
        with open(stack.data / "access.log", "wb") as log:
            result = uvloop.run(measure(stack.env, args, log))
    result["commit"] = commit()
    name = f"stages-{args.invoices}"
    save(name, f"CPU per upload stage, {args.invoices}-invoice requests", result, markdown)


if __name__ == "__main__":
    main()
