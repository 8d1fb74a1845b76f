"""A small load generator for the benchmarks: signed uploads of fresh invoices, closed or open loop.

    python benchmarks/loadgen.py URL CLIENT_ID SECRET --rate R --seconds S --invoices N --out FILE
    python benchmarks/loadgen.py URL CLIENT_ID SECRET --concurrency C --seconds S --invoices N --out FILE
    python benchmarks/loadgen.py URL CLIENT_ID SECRET --concurrency C --burst TOTAL --invoices N --out FILE

Open loop (``--rate``): requests start on a fixed schedule whatever the answers, as real channels' users do,
so an overloaded server cannot slow the offer down. Closed loop (``--concurrency``): C requests always in
flight, to find the capacity. Burst (``--burst``): TOTAL invoices in closed loop, refusals sent again.
Each request carries N fresh valid invoices of fresh consumers (no duplicates,
no caps reached). Writes one JSON line per request (start offset s, status, latency s, invoices accepted) and
a last line with the generator's own CPU seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import resource
import time

import aiohttp
import orjson
import uvloop

from gateway.checks import uscc_check_char
from loadtest.client import auth_headers

SELLERS = []
for _i in range(50):
    _first = f"91340104{_i:09d}"
    SELLERS.append(_first + uscc_check_char(_first))


class Invoices:
    """Fresh invoices: a per-process prefix and a counter make every number unique across generators."""

    def __init__(self) -> None:
        self.counter = itertools.count()
        self.prefix = f"{os.getpid() % 100000:05d}{random.randrange(1000):03d}"

    def body(self, n: int) -> bytes:
        invoices = []
        for _ in range(n):
            c = next(self.counter)
            while c % 1000 >= 995:  # plain sandbox answers only: skip the endings 995-999
                c = next(self.counter)
            number = f"26341{self.prefix}{c:07d}"
            who = f"{self.prefix}-{c}"
            invoices.append(
                {
                    "number": number,
                    "issue_date": "2026-06-01",
                    "amount": "188.00",
                    "seller_tax_id": SELLERS[c % len(SELLERS)],
                    "buyer_name": "张三",
                    "category": "catering",
                    "user": {"id": f"u{who}", "device_id": f"d{who}", "real_name": "张三"},
                }
            )
        return orjson.dumps({"invoices": invoices})


def signed(client_id: str, secret: str, body: bytes) -> dict[str, str]:
    return {**auth_headers(client_id, secret, "POST", "/v1/invoices", body), "Content-Type": "application/json"}


async def one(
    session: aiohttp.ClientSession,
    args: argparse.Namespace,
    inv: Invoices,
    t0: float,
    out: list[tuple[float, int, float, int]],
) -> None:
    body = inv.body(args.invoices)
    started = time.perf_counter()
    try:
        async with session.post(
            args.url + "/v1/invoices", data=body, headers=signed(args.client_id, args.secret, body)
        ) as r:
            raw = await r.read()
            status = r.status
    except (TimeoutError, aiohttp.ClientError):
        out.append((started - t0, 0, time.perf_counter() - started, 0))
        return
    accepted = 0
    if status == 202:
        accepted = sum(1 for x in orjson.loads(raw)["results"] if x["status"] == "accepted")
    out.append((started - t0, status, time.perf_counter() - started, accepted))


async def burst(
    session: aiohttp.ClientSession, args: argparse.Namespace, inv: Invoices, out: list[tuple[float, int, float, int]]
) -> None:
    """``args.burst`` invoices in all, as fast as the gateway takes them: a refused request (429, 503, a
    timeout) is sent again with the same invoices after its Retry-After. An invoice answered ``duplicate`` with
    a receipt was this generator's own (an earlier try went through) and counts as taken."""
    left = args.burst
    t0 = time.perf_counter()

    async def loop() -> None:
        nonlocal left
        while left > 0:
            n = min(args.invoices, left)
            left -= n
            body = inv.body(n)
            while True:
                started = time.perf_counter()
                status, retry_s, taken = await _send(session, args, body)
                out.append((started - t0, status, time.perf_counter() - started, taken))
                if status == 202:
                    break
                if status not in (0, 429, 503):
                    raise SystemExit(f"unexpected status {status}")
                await asyncio.sleep(retry_s)

    await asyncio.gather(*(loop() for _ in range(args.concurrency)))


async def _send(session: aiohttp.ClientSession, args: argparse.Namespace, body: bytes) -> tuple[int, float, int]:
    try:
        async with session.post(
            args.url + "/v1/invoices", data=body, headers=signed(args.client_id, args.secret, body)
        ) as r:
            raw = await r.read()
            if r.status != 202:
                return r.status, float(r.headers.get("Retry-After", "1")), 0
    except (TimeoutError, aiohttp.ClientError):
        return 0, 0.5, 0
    results = orjson.loads(raw)["results"]
    return 202, 0.0, sum(1 for x in results if x["status"] == "accepted" or x.get("receipt"))


async def main(args: argparse.Namespace) -> None:
    inv = Invoices()
    out: list[tuple[float, int, float, int]] = []
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        t0 = time.perf_counter()
        deadline = t0 + args.seconds
        if args.burst:
            await burst(session, args, inv, out)
        elif args.rate:
            tasks = set()
            for i in itertools.count():
                at = t0 + i / args.rate
                if at >= deadline:
                    break
                delay = at - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                task = asyncio.create_task(one(session, args, inv, t0, out))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            if tasks:
                await asyncio.wait(tasks, timeout=15)
        else:

            async def loop() -> None:
                while time.perf_counter() < deadline:
                    await one(session, args, inv, t0, out)

            await asyncio.gather(*(loop() for _ in range(args.concurrency)))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    write(args.out, out, usage.ru_utime + usage.ru_stime, usage.ru_maxrss)


def write(path: str, out: list[tuple[float, int, float, int]], cpu_s: float, maxrss_kb: int) -> None:
    with open(path, "w") as f:
        for start, status, latency, accepted in out:
            f.write(json.dumps([round(start, 4), status, round(latency, 5), accepted]) + "\n")
        f.write(json.dumps({"cpu_s": cpu_s, "maxrss_kb": maxrss_kb}) + "\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url")
    parser.add_argument("client_id")
    parser.add_argument("secret")
    parser.add_argument("--rate", type=float, default=0.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--invoices", type=int, default=20)
    parser.add_argument("--burst", type=int, default=0, help="send this many invoices in all, then stop")
    parser.add_argument("--out", required=True)
    uvloop.run(main(parser.parse_args()))
