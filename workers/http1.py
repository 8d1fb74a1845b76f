"""A lean HTTP/1.1 client for one origin: the tax service's verification calls, one per invoice.

aiohttp spent about 250 µs of CPU on each call here (request and response objects, header multidicts, tracing
hooks, the cookie jar), a third of a worker's CPU per invoice with the simulator. This client writes a request
head built once per path and parses the answer with httptools (llhttp, the C parser uvicorn uses): about 60 µs
a call (benchmarks/verify_client.py). It speaks enough HTTP for a JSON API and no more: POST with a body over
keep-alive connections (TLS for https), answers with Content-Length, chunked, or read until the server closes.
No redirects, proxies, cookies or compression.

A call that got no answer raises ``HttpError`` (refused, reset, closed, unreadable, too large) or
``TimeoutError``. A keep-alive connection the server closed while it was idle is not an error: the call is made
again, once, on a new connection, as browsers do."""

from __future__ import annotations

import asyncio
import ssl
import time
from urllib.parse import urlsplit

import httptools


class HttpError(Exception):
    """No answer from the service: connection refused, reset or closed, or an answer that is not HTTP."""


class _Stale(HttpError):
    """A reused connection closed before any byte of the answer came: the server had dropped it."""


class _Connection(asyncio.Protocol):
    """One keep-alive connection: one request at a time, its answer parsed as it comes."""

    def __init__(self, max_body: int) -> None:
        self.max_body = max_body
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.chunks: list[bytes] = []
        self.size = 0
        self.heard = False  # a byte of the current answer came
        self.framed = False  # the answer says where it ends (Content-Length or chunked)
        self.headers_done = False
        self.keep = False
        self.closed = False
        self.idle_since = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.heard = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(HttpError(f"unreadable answer: {exc}"))

    def eof_received(self) -> bool:
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is None or self.waiter.done():
            return
        if self.headers_done and not self.framed:  # an answer that ends when the connection does
            self._answer(False)
        elif not self.heard:
            self._fail(_Stale("connection closed before the answer"))
        else:
            self._fail(HttpError("connection closed during the answer"))

    # httptools' callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() in (b"content-length", b"transfer-encoding"):
            self.framed = True

    def on_headers_complete(self) -> None:
        self.headers_done = True

    def on_body(self, body: bytes) -> None:
        self.size += len(body)
        if self.size > self.max_body:
            raise HttpError(f"answer larger than {self.max_body} bytes")
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        self._answer(self.parser.should_keep_alive())

    def start(self, request: bytes, waiter: asyncio.Future[tuple[int, bytes]]) -> None:
        self.waiter, self.heard, self.framed, self.headers_done, self.size = waiter, False, False, False, 0
        self.chunks = []
        assert self.transport is not None
        self.transport.write(request)

    def _answer(self, keep: bool) -> None:
        waiter, self.waiter = self.waiter, None
        self.keep = keep
        if waiter is not None and not waiter.done():
            waiter.set_result((self.parser.get_status_code(), b"".join(self.chunks)))

    def _fail(self, exc: Exception) -> None:
        waiter, self.waiter = self.waiter, None
        self.keep = False
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        if self.transport is not None:
            self.transport.close()


def _timed_out(waiter: asyncio.Future[tuple[int, bytes]], seconds: float) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError(f"no answer within {seconds:g} s"))


class Origin:
    """Keep-alive connections to one origin (``base_url``'s scheme, host and port; its path prefixes every
    call's). As many connections as calls in flight: the caller caps those (the verifier's semaphore). A call
    has ``timeout_s`` in all, connecting included (as aiohttp's total timeout had); idle connections older than
    ``idle_s`` are closed rather than reused (servers drop them around then)."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float,
        idle_s: float = 15.0,
        max_body: int = 1 << 20,
    ) -> None:
        url = urlsplit(base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.host = url.hostname
        self.port = url.port or (443 if url.scheme == "https" else 80)
        self.ssl: ssl.SSLContext | None = ssl.create_default_context() if url.scheme == "https" else None
        self.prefix = url.path.rstrip("/")
        self.timeout_s = timeout_s
        self.idle_s = idle_s
        self.max_body = max_body
        authority = url.netloc.rpartition("@")[2]
        self._head_rest = (
            f"Host: {authority}\r\nUser-Agent: prize-invoice-gateway\r\nAccept: application/json\r\n"
            "Content-Type: application/json\r\nContent-Length: "
        ).encode("latin-1")
        self._heads: dict[str, bytes] = {}
        self._idle: list[_Connection] = []
        self._open: set[_Connection] = set()

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        """POST ``body`` (JSON) to ``path``; the answer's status and body."""
        head = self._heads.get(path)
        if head is None:
            head = self._heads[path] = f"POST {self.prefix}{path} HTTP/1.1\r\n".encode("latin-1") + self._head_rest
        request = b"%s%d\r\n\r\n%s" % (head, len(body), body)
        deadline = asyncio.get_running_loop().time() + self.timeout_s
        conn = self._take()
        if conn is not None:
            try:
                return await self._exchange(conn, request, deadline)
            except _Stale:
                pass  # dropped by the server while idle: once more on a new connection
        return await self._exchange(await self._connect(deadline), request, deadline)

    async def close(self) -> None:
        for conn in list(self._open):
            if conn.transport is not None:
                conn.transport.close()
        self._open.clear()
        self._idle.clear()

    def _take(self) -> _Connection | None:
        oldest = time.monotonic() - self.idle_s
        while self._idle:
            conn = self._idle.pop()
            if not conn.closed and conn.idle_since > oldest:
                return conn
            self._discard(conn)
        return None

    async def _connect(self, deadline: float) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout_at(deadline):
                _, conn = await loop.create_connection(
                    lambda: _Connection(self.max_body),
                    self.host,
                    self.port,
                    ssl=self.ssl,
                    server_hostname=self.host if self.ssl else None,
                )
        except OSError as exc:  # refused, unreachable, a TLS failure
            raise HttpError(f"cannot connect: {type(exc).__name__}") from exc
        self._open.add(conn)
        return conn

    async def _exchange(self, conn: _Connection, request: bytes, deadline: float) -> tuple[int, bytes]:
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[tuple[int, bytes]] = loop.create_future()
        timer = loop.call_at(deadline, _timed_out, waiter, self.timeout_s)
        try:
            conn.start(request, waiter)
            answer = await waiter
        except BaseException:  # timed out, failed or cancelled: whatever comes later must not meet another call
            self._discard(conn)
            raise
        finally:
            timer.cancel()
        if conn.keep and not conn.closed:
            conn.idle_since = time.monotonic()
            self._idle.append(conn)
        else:
            self._discard(conn)
        return answer

    def _discard(self, conn: _Connection) -> None:
        self._open.discard(conn)
        conn.waiter = None
        if conn.transport is not None and not conn.closed:
            conn.transport.close()
