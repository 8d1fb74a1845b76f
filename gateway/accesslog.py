"""The access log: one JSON line per request on stdout (apart from the error log on stderr), written in batches.

A line handed to the ``logging`` module cost about 28 µs of a single-invoice upload (a record, a lock, a write
and a flush per line: benchmarks/single_stages.py); here a line is its JSON bytes appended to a list, and the
list is written at most ``FLUSH_S`` later, or at once past ``MOST_BYTES``, and when the process stops. A line
holds the route template, never the raw path or query, and no header but the client id (gateway/middleware.py).
"""

from __future__ import annotations

import asyncio
import atexit
import sys
from typing import IO, Any

import orjson

FLUSH_S = 0.2  # a line reaches stdout this long after its answer at most
MOST_BYTES = 64 * 1024  # or sooner, when this much waits


class AccessLog:
    def __init__(self, stream: IO[bytes] | None = None) -> None:
        self.stream = stream  # None: this process's stdout as it is when written to
        self._lines: list[bytes] = []
        self._size = 0
        self._timer: asyncio.TimerHandle | None = None

    def line(self, record: dict[str, Any]) -> None:
        text = orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)
        self._lines.append(text)
        self._size += len(text)
        if self._size >= MOST_BYTES:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(FLUSH_S, self.flush)

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._lines:
            return
        lines, self._lines, self._size = self._lines, [], 0
        stream = self.stream or sys.stdout.buffer
        stream.write(b"".join(lines))
        stream.flush()


LOG = AccessLog()
atexit.register(LOG.flush)
