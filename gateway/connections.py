"""The HTTP connections of a gateway process, guarded against what the open internet sends: uvicorn's httptools
protocol with the limits it lacks (deploy/gunicorn.conf.py's worker, gateway/server.py, installs it).

- a request's line and headers must arrive within ``header_timeout_s`` of its first byte (or of the connection,
  for its first request), else ``408`` and the connection closes: a socket that never finishes its headers
  holds nothing for long;
- they may hold at most ``max_header_bytes``, else ``431`` and the connection closes (httptools reads headers
  of any size);
- a body still coming ``body_timeout_s`` + 1 s after its headers closes the connection: the app answered
  ``408`` a second before (gateway/middleware.py reads bodies with that timeout), or had answered early (a
  ``413``) while the client went on sending;
- at most ``max_connections`` per process: past it, the connection idle longest without a request under way
  (between keep-alive requests, or still sending its headers) is closed for the new one; honest clients hold
  their connections busy or finish their headers in milliseconds, so a flood of idle sockets evicts itself.

uvicorn's keep-alive timeout (gunicorn's ``keepalive``) still closes a connection idle between requests. Every
refusal here is problem+json with a ``code`` (gateway/codes.py), like every other answer of the gateway.

uvicorn writes an answer's head and its body in two system calls (and two TCP segments); what one turn of the
event loop writes to a connection here goes out in one (``Coalescing``).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from core.settings import Http
from gateway import codes
from gateway.codes import Code
from gateway.errors import PROBLEM_TYPE, problem_body
from gateway.metrics import CONNECTIONS_CLOSED

BODY_GRACE_S = 1.0  # the app's own 408 goes out first


class Refused(Exception):
    """Raised in a parser callback to stop reading a request the gateway refuses (httptools then raises its
    callback error, which uvicorn answers with ``send_400_response``: overridden here)."""


def refusal(code: Code, detail: str) -> bytes:
    """The whole HTTP answer of a refusal made by the protocol, before any app runs: problem+json, then close."""
    body = problem_body(code, detail, None)
    head = (
        f"HTTP/1.1 {code.status} {code.title}\r\ncontent-type: {PROBLEM_TYPE}\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


class Coalescing:
    """A connection's transport whose writes of one turn of the event loop go out together at the end of the turn:
    one system call and one TCP segment for an answer's head and body, which uvicorn writes apart. More than
    ``HOLD_BYTES`` held goes out at once, so that a long body streamed within one turn still meets the transport's
    flow control (uvicorn waits before its next write while the transport's buffer is full). Closing sends what is
    held first; everything else is the transport's own."""

    HOLD_BYTES = 65_536

    __slots__ = ("_held", "_held_bytes", "_loop", "transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self.transport = transport
        self._loop = loop
        self._held: list[bytes] = []
        self._held_bytes = 0

    def write(self, data: bytes) -> None:
        if not data:
            return
        if not self._held:
            self._loop.call_soon(self.flush)
        self._held.append(data)
        self._held_bytes += len(data)
        if self._held_bytes > self.HOLD_BYTES:
            self.flush()

    def flush(self) -> None:
        if self._held:
            data = self._held[0] if len(self._held) == 1 else b"".join(self._held)
            self._held.clear()
            self._held_bytes = 0
            if not self.transport.is_closing():
                self.transport.write(data)

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def abort(self) -> None:
        self._held.clear()
        self._held_bytes = 0
        self.transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a header deadline and size limit, a body deadline and a connection cap
    (the module's docstring). Built per connection by uvicorn with ``guard`` bound (gateway/server.py)."""

    def __init__(self, *args: Any, guard: Http, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.guard = guard
        self.deadline: asyncio.TimerHandle | None = None
        self.header_bytes = 0
        self.refused: bytes | None = None
        self.idle_since = time.monotonic()
        self.received = False  # a byte of the current request came

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.transport = Coalescing(transport, self.loop)  # type: ignore[assignment]
        self._arm(self.guard.header_timeout_s, self._headers_late)
        if len(self.connections) > self.guard.max_connections:
            self._make_room()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self.received = True
        super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.header_bytes = 0
        if self.deadline is None:  # a keep-alive connection's next request: its headers are due now
            self._arm(self.guard.header_timeout_s, self._headers_late)

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._disarm()
        self._arm(self.guard.body_timeout_s + BODY_GRACE_S, self._body_late)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        self.idle_since = time.monotonic()
        self.received = False
        super().on_response_complete()

    def send_400_response(self, msg: str) -> None:
        if self.refused is None:
            super().send_400_response(msg)
            return
        self._close_with(self.refused)

    def busy(self) -> bool:
        """A request of this connection is under way (its headers are in and its answer is not complete)."""
        return self.cycle is not None and not self.cycle.response_complete

    def _count(self, size: int) -> None:
        self.header_bytes += size
        if self.header_bytes > self.guard.max_header_bytes:
            limit = self.guard.max_header_bytes
            self.refused = refusal(codes.HEADERS_TOO_LARGE, f"the request line and headers are over {limit} bytes")
            raise Refused

    def _headers_late(self) -> None:
        self.deadline = None
        CONNECTIONS_CLOSED.labels("header_timeout").inc()
        if self.received:
            detail = f"the request's headers did not arrive within {self.guard.header_timeout_s:g} s"
            self._close_with(refusal(codes.REQUEST_TIMEOUT, detail))
        else:
            self.transport.close()  # nothing was asked: nothing to answer

    def _body_late(self) -> None:
        self.deadline = None
        CONNECTIONS_CLOSED.labels("body_timeout").inc()
        self.transport.close()

    def _make_room(self) -> None:
        """Over the cap: close the connection idle longest (no request under way), else this new one."""
        idle = [c for c in self.connections if isinstance(c, GuardedProtocol) and not c.busy() and c is not self]
        victim = min(idle, key=lambda c: c.idle_since, default=self)
        CONNECTIONS_CLOSED.labels("evicted").inc()
        victim.transport.close()

    def _close_with(self, answer: bytes) -> None:
        if not self.transport.is_closing():
            self.transport.write(answer)
            self.transport.close()

    def _arm(self, delay_s: float, then: Any) -> None:
        self._disarm()
        self.deadline = self.loop.call_later(delay_s, then)

    def _disarm(self) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None
