"""workers/overlap.py: batches in flight, bounded; a failure is told once the others are counted."""

import asyncio

import pytest

from workers.overlap import Overlap


def test_no_more_than_the_limit_run_at_once_and_every_count_is_kept() -> None:
    async def run() -> tuple[int, int]:
        overlap = Overlap(3)
        running = peak = 0

        async def batch(n: int) -> int:
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            await asyncio.sleep(0.001 * (n % 4))
            running -= 1
            return n

        for n in range(20):
            await overlap.submit(batch(n))
        await overlap.drain()
        return peak, overlap.take_done()

    peak, done = asyncio.run(run())
    assert peak == 3
    assert done == sum(range(20))


def test_a_failed_batch_is_raised_after_the_new_one_started_and_the_others_are_counted() -> None:
    async def run() -> tuple[list[str], int, bool]:
        overlap = Overlap(2)
        started: list[str] = []

        async def batch(name: str, fail: bool) -> int:
            started.append(name)
            await asyncio.sleep(0)
            if fail:
                raise ConnectionError(name)
            return 10

        await overlap.submit(batch("a", True))
        await overlap.submit(batch("b", False))
        with pytest.raises(ConnectionError, match="a"):
            await overlap.submit(batch("c", False))  # waits for a slot: "a" failed, "c" starts all the same
        await overlap.drain()
        return started, overlap.take_done(), overlap.busy

    started, done, busy = asyncio.run(run())
    assert started == ["a", "b", "c"]
    assert done == 20
    assert not busy


def test_cancel_stops_what_is_in_flight() -> None:
    async def run() -> bool:
        overlap = Overlap(2)
        finished = asyncio.Event()

        async def forever() -> int:
            await asyncio.sleep(3600)
            finished.set()
            return 1

        await overlap.submit(forever())
        overlap.cancel()
        await asyncio.sleep(0)
        return overlap.busy or finished.is_set()

    assert asyncio.run(run()) is False
