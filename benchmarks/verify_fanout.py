"""What fanning a batch's verification calls out costs the worker (workers/verify.py ``in_turn``), told apart from
the calls themselves: a batch of 5,000 invoices, each "call" a 2 ms wait behind the verifier's semaphore of 64 (as
``Verifier.ask`` holds it), made by a task each (as before) or by 128 tasks taking the invoices in turn. The
worker's CPU time an invoice, and the longest the event loop went without running a 1 ms ticker (what a stream
read waiting for its reply, with its 500 ms timeout, waits on). Median of 7 batches each, under uvloop.

    .venv/bin/python benchmarks/verify_fanout.py
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from workers.verify import in_turn

BATCH = 5000
CONCURRENCY = 64  # GATEWAY_WORKER_VERIFY_CONCURRENCY's default
ROUNDS = 7


Call = Callable[[int], Awaitable[int]]


async def measure(fan_out: Callable[[list[int], Call], Awaitable[list[int]]]) -> tuple[float, float]:
    slots = asyncio.Semaphore(CONCURRENCY)
    loop = asyncio.get_running_loop()

    async def call(i: int) -> int:
        async with slots:
            done = loop.create_future()
            loop.call_later(0.002, done.set_result, i)
            return await done

    stalls = [0.0]
    running = True

    async def ticker() -> None:
        while running:
            t = time.perf_counter()
            await asyncio.sleep(0.001)
            stalls.append(time.perf_counter() - t - 0.001)

    tick = asyncio.create_task(ticker())
    await asyncio.sleep(0.01)
    c = time.process_time()
    answers = await fan_out(list(range(BATCH)), call)
    cpu = time.process_time() - c
    running = False
    await tick
    assert answers == list(range(BATCH))
    return cpu / BATCH * 1e6, max(stalls) * 1000


async def each(items: list[int], call: Call) -> list[int]:
    return list(await asyncio.gather(*(call(i) for i in items)))


async def turns(items: list[int], call: Call) -> list[int]:
    return await in_turn(2 * CONCURRENCY, items, call)


def main() -> None:
    found: dict[str, list[tuple[float, float]]] = {"a task each": [], "128 tasks in turn": []}
    for _ in range(ROUNDS):
        found["a task each"].append(uvloop.run(measure(each)))
        found["128 tasks in turn"].append(uvloop.run(measure(turns)))
    for name, runs in found.items():
        cpu = statistics.median(r[0] for r in runs)
        stall = statistics.median(r[1] for r in runs)
        print(f"{name}: {cpu:.1f} µs of CPU an invoice, the event loop held up to {stall:.0f} ms (median of {ROUNDS})")


if __name__ == "__main__":
    main()
