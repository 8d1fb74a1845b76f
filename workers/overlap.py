"""Several batches in flight in one worker: while one batch's transaction commits, the next ones are verified.

Each batch is still processed whole by ``Worker.process`` (verify, judge, commit, then acknowledge): the
overlap changes when batches run, never the order of the steps inside one, so nothing is acknowledged before
its own commit. Two batches holding the same invoice (a redelivery beside its first delivery) may commit at
the same time: ``invoice_keys`` lets one of them write it (workers/sink.py), as between two worker processes.
Measured in benchmarks/results/pipeline.md (end to end) with ``GATEWAY_WORKER_IN_FLIGHT``.

A batch that failed because a store was down, slow or failing over (``core.errors.PASSING_ERRORS``) says
nothing of its entries: it waits here and is tried again by the same worker, which keeps its entries (the
worker's ``hold``), so no delivery of theirs is spent. Only a worker's death, or a failure that may be the
entries' own, lets another worker take them over and count a delivery (workers/stream.py ``claim_idle``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any, Generic, TypeVar

from workers import metrics

log = logging.getLogger(__name__)
T = TypeVar("T")
# Seconds before a batch that met a passing failure is tried again, by how many times it failed in a row.
RETRY_AFTER_S = (0.5, 1.0, 2.0, 5.0, 10.0)


def retry_after_s(failures: int) -> float:
    return RETRY_AFTER_S[min(failures, len(RETRY_AFTER_S)) - 1]


class Overlap(Generic[T]):
    """Up to ``limit`` items of ``work`` at once. An item whose work failed on an error ``passing`` accepts
    waits (``retry_after_s``) and is started again by ``start_due``; any other failure is raised from the next
    ``submit`` (once the new item has started) or ``drain``, the others' counts kept: the worker logs it and
    goes on, the failed batch's entries stay pending (taken over once idle, as after a crash)."""

    def __init__(
        self,
        limit: int,
        work: Callable[[T], Coroutine[Any, Any, int]],
        passing: Callable[[BaseException], bool] = lambda exc: False,
    ) -> None:
        self.limit = max(1, limit)
        self.work = work
        self.passing = passing
        self.running: dict[asyncio.Task[int], tuple[T, int]] = {}  # item, its failures so far
        self.waiting: list[tuple[float, T, int]] = []  # (monotonic time due, item, failures)
        self.done = 0  # invoices committed by the items finished, until ``take_done``
        self.failed: BaseException | None = None
        self.given_up: list[T] = []  # items that failed otherwise, until ``take_given_up``

    @property
    def busy(self) -> bool:
        return bool(self.running)

    def held(self) -> list[T]:
        """The items in flight or waiting to be tried again."""
        return [item for item, _ in self.running.values()] + [item for _, item, _ in self.waiting]

    def due_in_s(self) -> float | None:
        """Seconds until the next waiting item is due (0 if one is), None if none waits."""
        if not self.waiting:
            return None
        return max(0.0, min(due for due, _, _ in self.waiting) - time.monotonic())

    async def submit(self, item: T, failures: int = 0) -> None:
        """Start ``work(item)`` once fewer than ``limit`` items are in flight."""
        while len(self.running) >= self.limit:
            await self._collect(asyncio.FIRST_COMPLETED)
        self.running[asyncio.create_task(self.work(item))] = (item, failures)
        self._raise_failure()

    async def start_due(self) -> None:
        """Start again the waiting items that are due."""
        now = time.monotonic()
        # One at a time, each left waiting until it starts: a failure raised by ``submit`` loses none.
        while (i := next((i for i, w in enumerate(self.waiting) if w[0] <= now), None)) is not None:
            _, item, failures = self.waiting.pop(i)
            await self.submit(item, failures)

    async def drain(self) -> None:
        """Wait for every item in flight (not for those waiting to be tried again)."""
        while self.running:
            await self._collect(asyncio.ALL_COMPLETED)
        self._raise_failure()

    def take_given_up(self) -> list[T]:
        given_up, self.given_up = self.given_up, []
        return given_up

    def take_done(self) -> int:
        done, self.done = self.done, 0
        return done

    def cancel(self) -> None:
        """Stop the items in flight and forget those waiting (their entries stay pending: another delivery
        commits them)."""
        for task in self.running:
            task.cancel()
        self.running.clear()
        self.waiting.clear()

    async def _collect(self, when: str) -> None:
        finished, _ = await asyncio.wait(self.running, return_when=when)
        for task in finished:
            item, failures = self.running.pop(task)
            if (exc := task.exception()) is None:
                self.done += task.result()
            elif self.passing(exc):
                wait_s = retry_after_s(failures + 1)
                log.error("batch failed, tried again in %.1f s: %s: %s", wait_s, type(exc).__name__, exc)
                metrics.BATCH_RETRIES.inc()
                self.waiting.append((time.monotonic() + wait_s, item, failures + 1))
            else:
                self.given_up.append(item)
                if self.failed is None:
                    self.failed = exc
                else:  # one error is raised; the others are told here (their entries stay pending too)
                    log.error("batch failed, will be retried: %s: %s", type(exc).__name__, exc)

    def _raise_failure(self) -> None:
        failed, self.failed = self.failed, None
        if failed is not None:
            raise failed
