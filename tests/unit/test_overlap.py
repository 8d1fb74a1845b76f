"""workers/overlap.py: batches in flight, bounded; a failure is told once the others are counted; a batch that
met a passing store failure waits and is tried again, held meanwhile."""

import asyncio

import pytest

from workers import overlap as overlap_module
from workers.overlap import Overlap


def test_no_more_than_the_limit_run_at_once_and_every_count_is_kept() -> None:
    async def run() -> tuple[int, int]:
        running = peak = 0

        async def batch(n: int) -> int:
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            await asyncio.sleep(0.001 * (n % 4))
            running -= 1
            return n

        overlap = Overlap(3, batch)
        for n in range(20):
            await overlap.submit(n)
        await overlap.drain()
        return peak, overlap.take_done()

    peak, done = asyncio.run(run())
    assert peak == 3
    assert done == sum(range(20))


def test_a_failed_batch_is_raised_after_the_new_one_started_and_the_others_are_counted() -> None:
    async def run() -> tuple[list[str], int, bool]:
        started: list[str] = []

        async def batch(name: str) -> int:
            started.append(name)
            await asyncio.sleep(0)
            if name == "a":
                raise ConnectionError(name)
            return 10

        overlap = Overlap(2, batch)
        await overlap.submit("a")
        await overlap.submit("b")
        with pytest.raises(ConnectionError, match="a"):
            await overlap.submit("c")  # waits for a slot: "a" failed, "c" starts all the same
        await overlap.drain()
        assert overlap.take_given_up() == ["a"] and overlap.take_given_up() == []  # left for another delivery
        return started, overlap.take_done(), overlap.busy

    started, done, busy = asyncio.run(run())
    assert started == ["a", "b", "c"]
    assert done == 20
    assert not busy


def test_a_batch_that_met_a_passing_failure_waits_held_and_is_tried_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(overlap_module, "RETRY_AFTER_S", (0.05, 0.1))

    async def run() -> tuple[list[str], list[list[str]], int, float | None]:
        started: list[str] = []
        held: list[list[str]] = []

        async def batch(name: str) -> int:
            started.append(name)
            await asyncio.sleep(0)
            if name == "a" and started.count("a") < 3:  # fails twice, then goes through
                raise TimeoutError(name)
            return 10

        overlap = Overlap(2, batch, lambda exc: isinstance(exc, TimeoutError))
        await overlap.submit("a")
        await overlap.submit("b")
        await overlap.drain()  # no error raised: "a" waits
        held.append(overlap.held())
        waited = overlap.due_in_s()
        assert waited is not None and 0 < waited <= 0.05
        await overlap.start_due()  # not due yet: nothing starts
        held.append(sorted(started))
        for _ in range(2):
            await asyncio.sleep(overlap.due_in_s() or 0)
            await overlap.start_due()
            await overlap.drain()
        return started, held, overlap.take_done(), overlap.due_in_s()

    started, held, done, due = asyncio.run(run())
    assert started == ["a", "b", "a", "a"]
    assert held == [["a"], ["a", "b"]]
    assert done == 20  # "a" counted once, when it went through
    assert due is None


def test_retry_waits_grow_and_stop_growing() -> None:
    waits = [overlap_module.retry_after_s(n) for n in range(1, 9)]
    assert waits == sorted(waits) and waits[0] < waits[-1] == overlap_module.RETRY_AFTER_S[-1]


def test_cancel_stops_what_is_in_flight_and_forgets_what_waits() -> None:
    async def run() -> tuple[bool, list[str]]:
        finished = asyncio.Event()

        async def forever(name: str) -> int:
            if name == "fails":
                raise TimeoutError(name)
            await asyncio.sleep(3600)
            finished.set()
            return 1

        overlap = Overlap(2, forever, lambda exc: True)
        await overlap.submit("fails")
        await asyncio.sleep(0.01)
        await overlap.submit("forever")  # collects nothing yet: "fails" is seen failed when a slot is wanted
        await overlap.submit("forever too")  # now "fails" is collected and waits
        held_before = sorted(overlap.held())
        overlap.cancel()
        await asyncio.sleep(0)
        assert held_before == ["fails", "forever", "forever too"]
        return overlap.busy or finished.is_set(), overlap.held()

    assert asyncio.run(run()) == (False, [])
