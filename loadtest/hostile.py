"""One hostile host beside an honest channel: the attack of issue 17, and the honest channel's goodput beside it.

    .venv/bin/python -m loadtest.hostile --port 8080 --slow 300 --idle 700 --seconds 30

The attack holds ``slow`` connections that send a signed-looking upload's headers (a known channel's id, a
made-up signature: no secret is needed, the signature can only be checked once the body is in) and then a byte
of body every few seconds, and ``idle`` connections that send part of a request line and then a byte now and then,
never finishing their headers; each one the gateway closes is opened again at once. It runs for ``seconds`` and
stops by itself (loopback only). ``honest`` uploads at a fixed rate and counts what it gets.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import secrets
import statistics
import subprocess
import sys
import time
from collections import Counter

import msgspec
import orjson

from loadtest import sample
from loadtest.client import SignedClient

DRIP_S = 3.0  # a byte every few seconds: under any per-read timeout, never done


class Attack(msgspec.Struct):
    opened: int = 0  # connections opened, reopenings included
    closed_by_server: int = 0
    answers: Counter[str] = msgspec.field(default_factory=Counter)  # the status lines the server sent


def slow_head(client_id: str, length: int) -> bytes:
    """An upload's headers with a made-up signature and a body of ``length`` bytes to come."""
    lines = [
        "POST /v1/invoices HTTP/1.1",
        "Host: gateway",
        "Content-Type: application/json",
        f"Content-Length: {length}",
        f"X-Client-Id: {client_id}",
        f"X-Timestamp: {int(time.time())}",
        f"X-Nonce: {secrets.token_hex(16)}",
        f"X-Signature: {secrets.token_hex(32)}",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def _hold(port: int, slow: bool, client_id: str, until: float, tally: Attack) -> None:
    """One hostile socket, opened again whenever the server closes it, until ``until``."""
    while time.monotonic() < until:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.1)
            continue
        tally.opened += 1
        try:
            writer.write(slow_head(client_id, 10_000) + b"{" if slow else b"POST /v1/invoices HTTP/1.1\r\nHost: g")
            while time.monotonic() < until:
                await writer.drain()
                with contextlib.suppress(TimeoutError):
                    data = await asyncio.wait_for(reader.read(4096), DRIP_S * random.uniform(0.5, 1.5))
                    if not data:
                        tally.closed_by_server += 1
                        break
                    tally.answers[data.split(b"\r\n", 1)[0].decode(errors="replace")] += 1
                writer.write(b" " if slow else b"a")
        except OSError:
            tally.closed_by_server += 1
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def attack(port: int, slow: int, idle: int, seconds: float, client_id: str = "demo-channel") -> Attack:
    """Hold ``slow`` + ``idle`` hostile connections for ``seconds``."""
    tally = Attack()
    until = time.monotonic() + seconds
    holders = [_hold(port, True, client_id, until, tally) for _ in range(slow)]
    holders += [_hold(port, False, client_id, until, tally) for _ in range(idle)]
    await asyncio.gather(*holders)
    return tally


class Honest(msgspec.Struct):
    sent: int
    statuses: dict[str, int]
    invoices_accepted: int
    latency_ms_p50: float
    latency_ms_p99: float
    seconds: float

    @property
    def goodput(self) -> float:
        """The share of its requests answered 202."""
        return self.statuses.get("202", 0) / self.sent if self.sent else 0.0


def honest(url: str, rate_per_s: float, seconds: float, invoices: int = 10, client_id: str = "demo-channel") -> Honest:
    """Upload ``invoices`` invoices ``rate_per_s`` times a second for ``seconds``, one request at a time on its
    schedule (a late one is sent at once, never skipped), counting every answer."""
    rng = random.Random()
    statuses: Counter[str] = Counter()
    took: list[float] = []
    accepted = 0
    started = time.monotonic()
    with SignedClient(url, client_id, f"{client_id}-secret", timeout_s=30) as channel:
        for i in range(int(rate_per_s * seconds)):
            due = started + i / rate_per_s
            if due > time.monotonic():
                time.sleep(due - time.monotonic())  # the channel's schedule, not a wait for a result
            asked = time.monotonic()
            try:
                resp = channel.upload([sample.invoice(rng) for _ in range(invoices)])
            except OSError as exc:
                statuses[type(exc).__name__] += 1
                continue
            took.append((time.monotonic() - asked) * 1000)
            statuses[str(resp.status_code)] += 1
            if resp.status_code == 202:
                accepted += sum(1 for r in resp.json()["results"] if r["status"] == "accepted")
    cuts = statistics.quantiles(took, n=100) if len(took) >= 2 else [0.0] * 99
    return Honest(
        sum(statuses.values()),
        dict(statuses),
        accepted,
        round(statistics.median(took), 1) if took else 0.0,
        round(cuts[98], 1),
        round(time.monotonic() - started, 1),
    )


def run_attack(port: int, slow: int, idle: int, seconds: float) -> subprocess.Popen[bytes]:
    """The attack in a process of its own (its sockets and CPU apart from the honest client's), as a Popen whose
    last line of output is the attack's tally (JSON)."""
    argv = [sys.executable, "-m", "loadtest.hostile", "--port", str(port), "--slow", str(slow), "--idle", str(idle)]
    return subprocess.Popen([*argv, "--seconds", str(seconds)], stdout=subprocess.PIPE)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--slow", type=int, default=300)
    parser.add_argument("--idle", type=int, default=700)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--client-id", default="demo-channel")
    args = parser.parse_args()
    tally = asyncio.run(attack(args.port, args.slow, args.idle, args.seconds, args.client_id))
    print(orjson.dumps(msgspec.to_builtins(tally)).decode(), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
