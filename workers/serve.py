"""A lean HTTP/1.1 server for the simulators' small JSON APIs (the verification service's, issue 19).

The verification simulator runs on the machine of the pipeline it stands in for, so every µs of its CPU is one
the workers and PostgreSQL do not get (on the benchmarks' two cores it is the tax service's cost counted as
ours). Under aiohttp's web server it spent about 130 µs of CPU a call; parsing with httptools (llhttp, the C
parser uvicorn uses) and writing each answer with one system call, about 65 µs (benchmarks/simulator_cost.py).

It speaks enough HTTP for such an API and no more: requests with a body by Content-Length or chunked, over
keep-alive connections; answers with Content-Length, in the order the requests came (a pipelining client gets
them in order even when a later one is ready first). A route is a function of the request body that answers at
once, or after a delay it names (the simulated latency: a timer, no task). No TLS, compression or query
strings; an unknown path is 404, a known path with another method 405, a route that fails 500 (logged), a body
over ``MAX_BODY`` 413, a request that does not parse 400 (and the connection closes).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections import deque
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import NamedTuple

import httptools
import msgspec

MAX_BODY = 8 << 20  # the sandbox's registrations are the largest bodies

log = logging.getLogger("serve")


class Reply(NamedTuple):
    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()
    delay_s: float = 0.0  # sent this long after the request came (the simulated service's latency)


def json(status: int, value: object, headers: tuple[tuple[str, str], ...] = (), delay_s: float = 0.0) -> Reply:
    return Reply(status, msgspec.json.encode(value), headers, delay_s)


Route = Callable[[bytes], Reply]
Routes = Mapping[tuple[str, str], Route]  # (method, path) -> route


def _head(status: int, length: int, headers: tuple[tuple[str, str], ...], keep: bool) -> bytes:
    lines = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}", "Content-Type: application/json"]
    lines.append(f"Content-Length: {length}")
    lines.extend(f"{name}: {value}" for name, value in headers)
    if not keep:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class _Slot:
    """One request's place in its connection's order of answers: its bytes once ready, and the timer until then."""

    __slots__ = ("data", "keep", "timer")

    def __init__(self, keep: bool) -> None:
        self.data: bytes | None = None
        self.keep = keep
        self.timer: asyncio.TimerHandle | None = None


class _Connection(asyncio.Protocol):
    def __init__(self, served: Served, loop: asyncio.AbstractEventLoop) -> None:
        self.served = served
        self.loop = loop
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.chunks: list[bytes] = []
        self.size = 0
        self.order: deque[_Slot] = deque()  # the answers owed, in the requests' order
        self.closing = False  # no request is read any more

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.served.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.served.connections.discard(self)
        self.closing = True
        for slot in self.order:
            if slot.timer is not None:
                slot.timer.cancel()
        self.order.clear()

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._refuse(400, "upgrades are not served")
        except httptools.HttpParserError:
            self._refuse(400, "not an HTTP/1.1 request")

    def on_message_begin(self) -> None:
        self.url, self.chunks, self.size = b"", [], 0

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_body(self, body: bytes) -> None:
        self.size += len(body)
        if self.size <= MAX_BODY:
            self.chunks.append(body)

    def on_message_complete(self) -> None:
        if self.closing:
            return
        if self.size > MAX_BODY:
            self._refuse(413, f"a body of at most {MAX_BODY} bytes")
            return
        path = self.url.split(b"?", 1)[0].decode("latin-1")
        method = self.parser.get_method().decode("latin-1")
        route = self.served.routes.get((method, path))
        if route is None:
            status = 405 if path in self.served.paths else 404
            reply = json(status, {"error": HTTPStatus(status).phrase.lower()})
        else:
            try:
                reply = route(b"".join(self.chunks))
            except Exception:  # a bug in a route: its caller gets a 500, the connection stays usable
                log.exception("%s %s failed", method, path)
                reply = json(500, {"error": "internal server error"})
        slot = _Slot(self.parser.should_keep_alive())
        self.order.append(slot)
        self.closing = not slot.keep  # a request pipelined after "Connection: close" is not read
        data = _head(reply.status, len(reply.body), reply.headers, slot.keep) + reply.body
        if reply.delay_s > 0:
            slot.timer = self.loop.call_later(reply.delay_s, self._ready, slot, data)
        else:
            self._ready(slot, data)

    def _ready(self, slot: _Slot, data: bytes) -> None:
        """``slot``'s answer is ready: write it with every ready one it held back, in order."""
        slot.data, slot.timer = data, None
        out: list[bytes] = []
        last = False  # an answer after which the connection closes (what follows it is dropped)
        while self.order and self.order[0].data is not None and not last:
            done = self.order.popleft()
            out.append(done.data)  # type: ignore[arg-type]
            last = not done.keep
        transport = self.transport
        if out and transport is not None and not transport.is_closing():
            transport.writelines(out)
            if last:
                transport.close()

    def _refuse(self, status: int, why: str) -> None:
        """Answer ``status`` after what is already owed, and close: the stream cannot be read on."""
        self.closing = True
        body = msgspec.json.encode({"error": why})
        slot = _Slot(False)
        self.order.append(slot)
        self._ready(slot, _head(status, len(body), (), False) + body)


class Served:
    """A listening server and its open connections: ``close`` ends both, as a server going away does."""

    def __init__(self, routes: Routes) -> None:
        self.routes = routes
        self.paths = frozenset(path for _, path in routes)
        self.connections: set[_Connection] = set()
        self.server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    def connection(self) -> _Connection:
        return _Connection(self, asyncio.get_running_loop())

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
        for conn in list(self.connections):
            if conn.transport is not None:
                conn.transport.close()


async def start(routes: Routes, host: str, port: int) -> Served:
    """Serve ``routes`` on host:port (0: a free port, then ``port`` says which)."""
    served = Served(routes)
    loop = asyncio.get_running_loop()
    served.server = await loop.create_server(served.connection, host, port, reuse_address=True)
    return served


async def serve_until_stopped(routes: Routes, host: str, port: int) -> None:
    """Serve until SIGINT or SIGTERM, then close the listening socket and the connections, and return."""
    loop = asyncio.get_running_loop()
    stopped = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopped.set)
    served = await start(routes, host, port)
    try:
        await stopped.wait()
    finally:
        await served.close()
