"""A small load generator for the benchmarks: signed uploads of fresh invoices, closed or open loop.

    python benchmarks/loadgen.py URL CLIENT_ID SECRET --rate R --seconds S --invoices N --out FILE
    python benchmarks/loadgen.py URL CLIENT_ID SECRET --concurrency C --seconds S --invoices N --out FILE

Open loop (``--rate``): requests start on a fixed schedule whatever the answers, as real channels' users do,
so an overloaded server cannot slow the offer down. Closed loop (``--concurrency``): C requests always in
flight, to find the capacity. Each request carries N fresh valid invoices of fresh consumers (no duplicates,
no caps reached). Writes one JSON line per request (start offset s, status, latency s, invoices accepted) and
a last line with the generator's own CPU seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
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
            number = f"26341{self.prefix}{c:07d}"
            if number[-3:] in ("995", "996", "997", "998", "999"):
                number = number[:-3] + "100"  # plain sandbox answers only (a collision is a duplicate, fine)
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
    ts, nonce = str(int(time.time())), os.urandom(12).hex()
    canonical = "\n".join(("POST", "/v1/invoices", ts, nonce, hashlib.sha256(body).hexdigest()))
    sig = hmac.new(secret.encode(), canonical.encode(), hashlib.sha256).hexdigest()
    return {
        "X-Client-Id": client_id,
        "X-Timestamp": ts,
        "X-Nonce": nonce,
        "X-Signature": sig,
        "Content-Type": "application/json",
    }


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


async def main(args: argparse.Namespace) -> None:
    inv = Invoices()
    out: list[tuple[float, int, float, int]] = []
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        t0 = time.perf_counter()
        deadline = t0 + args.seconds
        if args.rate:
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
    write(args.out, out, usage.ru_utime + usage.ru_stime)


def write(path: str, out: list[tuple[float, int, float, int]], cpu_s: float) -> None:
    with open(path, "w") as f:
        for start, status, latency, accepted in out:
            f.write(json.dumps([round(start, 4), status, round(latency, 5), accepted]) + "\n")
        f.write(json.dumps({"cpu_s": cpu_s}) + "\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url")
    parser.add_argument("client_id")
    parser.add_argument("secret")
    parser.add_argument("--rate", type=float, default=0.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--invoices", type=int, default=20)
    parser.add_argument("--out", required=True)
    uvloop.run(main(parser.parse_args()))
