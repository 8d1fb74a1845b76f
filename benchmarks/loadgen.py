"""A small load generator for the benchmarks: signed uploads of fresh invoices, closed or open loop.

    python benchmarks/loadgen.py URL CLIENT_ID SECRET --rate R --seconds S --invoices N --out FILE
    python benchmarks/loadgen.py URL CLIENT_ID SECRET --concurrency C --seconds S --invoices N --out FILE
    python benchmarks/loadgen.py URL CLIENT_ID SECRET --burst TOTAL --concurrency C --invoices N --out FILE

Open loop (``--rate``): requests start on a fixed schedule whatever the answers, as real channels' users do,
so an overloaded server cannot slow the offer down. Closed loop (``--concurrency``): C requests always in
flight, to find the capacity (a client refused with 503 pauses ``--backoff-ms`` rather than spin). Burst
(``--burst``): TOTAL invoices in closed loop, a refused request sent again (signed anew) until taken. Each
request carries N fresh valid invoices of fresh consumers (no duplicates, no caps reached). Writes one JSON
line per request (start offset s, status, latency s, invoices accepted) and a last line with the generator's
own CPU seconds inside the timed window and its peak RSS.

The generator shares the machine's cores with the server it measures, so it is kept cheap: every request
(body, signature, the HTTP/1.1 bytes) is built before the clock starts, and the client is a bare asyncio
protocol on keep-alive connections that reads a status line, a Content-Length and the body (the accepted
invoices are counted in the bytes, not parsed). ``--start-at`` (Unix time) lets several generators, each
building its requests first, start their clocks together.
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
from collections.abc import Iterator
from typing import cast
from urllib.parse import urlsplit

import orjson
import uvloop

from core.checks import uscc_check_char
from loadtest.client import auth_headers

SELLERS = []
for _i in range(50):
    _first = f"91340104{_i:09d}"
    SELLERS.append(_first + uscc_check_char(_first))
ACCEPTED = b'"status":"accepted"'
PREBUILT_CLOSED_LOOP_RPS = 600  # requests built ahead per second of a closed loop; more are built on the way


class Invoices:
    """Fresh invoices: a per-process prefix and a counter make every number unique across generators."""

    def __init__(self, prefix: str = "") -> None:
        self.counter = itertools.count()
        self.prefix = prefix or f"{os.getpid() % 100000:05d}{random.randrange(1000):03d}"

    def numbers(self, n: int) -> Iterator[str]:
        """The numbers of the next ``n`` invoices ``body`` makes (from a fresh counter: what a generator given
        the same prefix will send)."""
        counter = itertools.count()
        for _ in range(n):
            yield f"26341{self.prefix}{_plain(counter):07d}"

    def body(self, n: int) -> bytes:
        invoices = []
        for _ in range(n):
            c = _plain(self.counter)
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


def _plain(counter: Iterator[int]) -> int:
    """The counter's next value whose invoice gets a plain sandbox answer: the endings 995-999 are skipped."""
    c = next(counter)
    while c % 1000 >= 995:
        c = next(counter)
    return c


def signed(client_id: str, secret: str, body: bytes) -> dict[str, str]:
    return {**auth_headers(client_id, secret, "POST", "/v1/invoices", body), "Content-Type": "application/json"}


def request_bytes(host: str, client_id: str, secret: str, body: bytes) -> bytes:
    """One whole HTTP/1.1 upload, signed, ready to write."""
    head = ["POST /v1/invoices HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    head += [f"{k}: {v}" for k, v in signed(client_id, secret, body).items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


class Connection(asyncio.Protocol):
    """One keep-alive connection: one request at a time, the answer as (status, body)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass it

    def send(self, data: bytes) -> asyncio.Future[tuple[int, bytes]]:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return self.waiter

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buffer[:end]).lower() + b"\r\n"
        at = head.find(b"\r\ncontent-length:")
        length = int(head[at + 17 : head.find(b"\r\n", at + 2)]) if at >= 0 else 0
        if len(self.buffer) < end + 4 + length:
            return
        status, body = int(head[9:12]), bytes(self.buffer[end + 4 : end + 4 + length])
        del self.buffer[: end + 4 + length]
        if b"\r\nconnection: close" in head:
            self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result((status, body))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("closed"))


class Pool:
    """Idle keep-alive connections; a request without one opens a new one (open loop: no limit)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.idle: list[Connection] = []

    async def request(self, data: bytes) -> tuple[int, bytes]:
        conn = None
        while self.idle and conn is None:
            conn = self.idle.pop()
            if conn.closed:  # the server let it go while idle (keep-alive timeout)
                conn = None
        if conn is None:
            _, conn = await asyncio.get_running_loop().create_connection(Connection, self.host, self.port)
        answer = await asyncio.wait_for(conn.send(data), 10)
        if not conn.closed:
            self.idle.append(conn)
        elif conn.transport is not None:
            conn.transport.close()
        return answer


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def one(pool: Pool, data: bytes, t0: float, out: list[tuple[float, int, float, int]]) -> None:
    started = time.perf_counter()
    try:
        status, body = await pool.request(data)
    except (TimeoutError, OSError, RuntimeError):
        out.append((started - t0, 0, time.perf_counter() - started, 0))
        return
    accepted = body.count(ACCEPTED) if status == 202 else 0
    out.append((started - t0, status, time.perf_counter() - started, accepted))


async def burst(args: argparse.Namespace, pool: Pool, inv: Invoices, out: list[tuple[float, int, float, int]]) -> None:
    """``args.burst`` invoices in all, as fast as the gateway takes them: a refused request (429, 503, no answer)
    is sent again with the same invoices, signed anew, after a pause. An invoice answered ``duplicate`` with a
    receipt was this generator's own (an earlier try went through) and counts as taken."""
    netloc = urlsplit(args.url).netloc
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
                try:
                    status, raw = await pool.request(request_bytes(netloc, args.client_id, args.secret, body))
                except (TimeoutError, OSError, RuntimeError):
                    status, raw = 0, b""
                taken = 0
                if status == 202:
                    results = orjson.loads(raw)["results"]
                    taken = sum(1 for x in results if x["status"] == "accepted" or x.get("receipt"))
                out.append((started - t0, status, time.perf_counter() - started, taken))
                if status == 202:
                    break
                if status not in (0, 429, 503):
                    raise SystemExit(f"unexpected status {status}")
                await asyncio.sleep(0.5)

    await asyncio.gather(*(loop() for _ in range(args.concurrency)))


async def main(args: argparse.Namespace) -> None:
    url = urlsplit(args.url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    inv = Invoices(args.prefix)
    if args.burst:
        out_burst: list[tuple[float, int, float, int]] = []
        burst_pool = Pool(host, port)
        cpu0 = cpu_s()
        await burst(args, burst_pool, inv, out_burst)
        write(args.out, out_burst, cpu_s() - cpu0)
        return
    per_s = args.rate or PREBUILT_CLOSED_LOOP_RPS
    ahead = [
        request_bytes(url.netloc, args.client_id, args.secret, inv.body(args.invoices))
        for _ in range(int(per_s * args.seconds) + 1)
    ]
    out: list[tuple[float, int, float, int]] = []
    pool = Pool(host, port)
    if args.start_at:
        late = time.time() - args.start_at
        if late > 0:
            print(f"loadgen: started {late:.2f} s late (building the requests took longer)")
        await asyncio.sleep(max(0.0, -late))
    cpu0, t0 = cpu_s(), time.perf_counter()
    deadline = t0 + args.seconds
    if args.rate:
        tasks = set()
        for i, data in enumerate(ahead):
            at = t0 + i / args.rate
            if at >= deadline:
                break
            delay = at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(one(pool, data, t0, out))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.wait(tasks, timeout=15)
    else:
        queue = iter(ahead)

        def next_request() -> bytes:
            data = next(queue, None)
            return data or request_bytes(url.netloc, args.client_id, args.secret, inv.body(args.invoices))

        async def loop() -> None:
            while time.perf_counter() < deadline:
                await one(pool, next_request(), t0, out)
                if out[-1][1] == 503:
                    await asyncio.sleep(args.backoff_ms / 1000)  # a refused client does not spin

        await asyncio.gather(*(loop() for _ in range(args.concurrency)))
    write(args.out, out, cpu_s() - cpu0)
    for conn in pool.idle:
        if conn.transport is not None:
            conn.transport.close()


def write(path: str, out: list[tuple[float, int, float, int]], cpu_s: float) -> None:
    with open(path, "w") as f:
        for start, status, latency, accepted in out:
            f.write(json.dumps([round(start, 4), status, round(latency, 5), accepted]) + "\n")
        f.write(json.dumps({"cpu_s": cpu_s, "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}) + "\n")


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
    parser.add_argument("--burst", type=int, default=0, help="send this many invoices in all, then stop")
    parser.add_argument("--prefix", default="", help="8 digits that make the invoice numbers (default: random)")
    parser.add_argument("--start-at", type=float, default=0.0)
    parser.add_argument("--backoff-ms", type=float, default=20.0, help="closed loop: pause after a 503")
    uvloop.run(main(parser.parse_args()))
