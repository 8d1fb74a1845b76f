"""CPU per verification call: aiohttp against the lean client the workers use (workers/http1.py), in one run.

    .venv/bin/python benchmarks/verify_client.py [--calls 4000] [--rounds 5] [--concurrency 32]

Starts the simulator (latency 0) as a process of its own, then, round after round and alternating, makes
``--calls`` calls to its ``POST /verify`` from this process, ``--concurrency`` at a time, through each client:
an aiohttp session as the workers had it, the bare ``Origin``, and the whole ``Verifier.ask`` (semaphore,
breaker, metrics, decoding the answer) on the ``Origin``. Reports this process's CPU per call (its medians):
CPU, unlike wall time, barely moves with what else the machine does. Writes benchmarks/results/verify-client.*.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import save, simulator  # noqa: E402


async def _cpu_per_call(call: Callable[[int], Awaitable[int]], calls: int, concurrency: int) -> float:
    slots = asyncio.Semaphore(concurrency)

    async def one(i: int) -> int:
        async with slots:
            return await call(i)

    await asyncio.gather(*(one(i) for i in range(200)))  # connections open, code warm
    started = time.process_time()
    statuses = await asyncio.gather(*(one(i) for i in range(calls)))
    spent = time.process_time() - started
    if set(statuses) != {200}:
        raise RuntimeError(f"unexpected answers: {sorted(set(statuses))}")
    return spent / calls * 1e6


def verify_body(i: int) -> bytes:
    """The i-th distinct verification request, as the workers send it."""
    import msgspec

    return msgspec.json.encode(
        {"number": f"2634{i:013d}120", "code": "", "issue_date": "2026-11-01", "amount": "128.50", "check_code": ""}
    )


async def _round(url: str, calls: int, concurrency: int) -> dict[str, float]:
    import aiohttp

    from workers.http1 import Origin
    from workers.verify import Verifier

    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency, keepalive_timeout=30))
    timeout = aiohttp.ClientTimeout(total=3)

    async def with_aiohttp(i: int) -> int:
        headers = {"Content-Type": "application/json"}
        async with session.post(f"{url}/verify", data=verify_body(i), headers=headers, timeout=timeout) as resp:
            await resp.read()
            return resp.status

    origin = Origin(url, timeout_s=3)

    async def with_origin(i: int) -> int:
        return (await origin.post("/verify", verify_body(i)))[0]

    verifier = Verifier(Origin(url, timeout_s=3), concurrency=concurrency, name_ref=str)

    async def with_verifier(i: int) -> int:
        answer = await verifier.ask(f"2634{i:013d}120", "", "2026-11-01", 12850, "")
        return 200 if answer.outcome == "found" else 0

    try:
        return {
            "aiohttp": await _cpu_per_call(with_aiohttp, calls, concurrency),
            "origin": await _cpu_per_call(with_origin, calls, concurrency),
            "verifier": await _cpu_per_call(with_verifier, calls, concurrency),
        }
    finally:
        await session.close()
        await origin.close()


def markdown(r: dict[str, Any]) -> str:
    m = r["median_us"]
    return (
        f"{r['calls']:,} calls a round, {r['concurrency']} at a time, {r['rounds']} rounds, simulator latency 0, "
        f"this process's CPU per call (median; rounds in brackets).\n\n"
        "| client | µs CPU per call |\n| --- | --- |\n"
        + "".join(
            f"| {what} | {m[key]:.0f} ({' / '.join(f'{x:.0f}' for x in r['rounds_us'][key])}) |\n"
            for key, what in (
                ("aiohttp", "aiohttp session (the workers' client before)"),
                ("origin", "workers/http1.py `Origin.post`"),
                ("verifier", "the whole `Verifier.ask` on `Origin`"),
            )
        )
        + f"\naiohttp / Origin: **{m['aiohttp'] / m['origin']:.1f}×**\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    import uvloop

    with simulator() as (url, _):
        rounds = [uvloop.run(_round(url, args.calls, args.concurrency)) for _ in range(args.rounds)]
    keys = rounds[0].keys()
    result = {
        "calls": args.calls,
        "concurrency": args.concurrency,
        "rounds": args.rounds,
        "rounds_us": {k: [r[k] for r in rounds] for k in keys},
        "median_us": {k: statistics.median(r[k] for r in rounds) for k in keys},
    }
    save("verify-client", "Verification calls: CPU per call by client", result, markdown)


if __name__ == "__main__":
    main()
