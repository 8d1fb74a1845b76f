"""Several batches in flight in one worker: while one batch's transaction commits, the next ones are verified.

Each batch is still processed whole by ``Worker.process`` (verify, judge, commit, then acknowledge): the
overlap changes when batches run, never the order of the steps inside one, so nothing is acknowledged before
its own commit. Two batches holding the same invoice (a redelivery beside its first delivery) may commit at
the same time: ``invoice_keys`` lets one of them write it (workers/sink.py), as between two worker processes.
Measured in benchmarks/results/pipeline.md (end to end) with ``GATEWAY_WORKER_IN_FLIGHT``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger(__name__)


class Overlap:
    """Up to ``limit`` batches at once. A batch that failed raises its error from the next ``submit`` (once the
    new batch has started) or ``drain``, the others' counts kept: the worker logs it and goes on, the failed
    batch's entries stay pending (taken over once idle, as after a crash)."""

    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self.running: set[asyncio.Task[int]] = set()
        self.done = 0  # invoices committed by the batches finished, until ``take_done``
        self.failed: BaseException | None = None

    @property
    def busy(self) -> bool:
        return bool(self.running)

    async def submit(self, work: Coroutine[Any, Any, int]) -> None:
        """Start ``work`` once fewer than ``limit`` batches are in flight."""
        try:
            while len(self.running) >= self.limit:
                await self._collect(asyncio.FIRST_COMPLETED)
        except BaseException:
            work.close()  # cancelled while waiting: never started, its entries stay pending
            raise
        self.running.add(asyncio.create_task(work))
        self._raise_failure()

    async def drain(self) -> None:
        """Wait for every batch in flight."""
        while self.running:
            await self._collect(asyncio.ALL_COMPLETED)
        self._raise_failure()

    def take_done(self) -> int:
        done, self.done = self.done, 0
        return done

    def cancel(self) -> None:
        """Stop the batches in flight (their entries stay pending: another delivery commits them)."""
        for task in self.running:
            task.cancel()
        self.running.clear()

    async def _collect(self, when: str) -> None:
        finished, pending = await asyncio.wait(self.running, return_when=when)
        self.running = set(pending)
        for task in finished:
            if (exc := task.exception()) is None:
                self.done += task.result()
            elif self.failed is None:
                self.failed = exc
            else:  # one error is raised; the others are told here (their entries stay pending too)
                log.error("batch failed, will be retried: %s: %s", type(exc).__name__, exc)

    def _raise_failure(self) -> None:
        failed, self.failed = self.failed, None
        if failed is not None:
            raise failed
