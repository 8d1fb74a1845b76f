"""One connection to a single Redis that every request of the process shares (issue 19): commands are written in
the order they are called, and Redis answers in that order, so each reply settles the oldest waiting call.

redis-py's pooled client takes a connection out of its pool for each command, retries through two layers, and
must throw the connection away when a caller's timeout cancels the read (it cannot know where the reply ends):
a single-invoice upload's one script call spent about a quarter of its CPU there (py-spy, ``single_stages.py``). Here a
call is a packed command (hiredis), one write and a future; a call past its deadline fails at once with
TimeoutError and its reply, when it comes, is read and dropped: the connection stays in step.

A deadline is checked by one timer for the whole connection, armed at the oldest unanswered call's deadline,
not a timer per call. The deadlines are checked in the order the calls were sent, which is their own order
when the calls share a timeout, as the gateway's do (a call with a shorter one behind a longer one would fail
late, at most by the difference).

When the oldest unanswered call has waited ``hung_s`` (the stores' Redis timeout), Redis is taken to be hung: the
connection is closed, every waiting call fails with ConnectionError, and the next call connects again. A call
that met a broken connection is sent again, twice at most, within its deadline: what the gateway sends here is
safe to repeat (core/stores.py says why).

Only for a single Redis over TCP (``Line.of`` says None otherwise: a cluster, a unix socket, TLS).
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, cast

import hiredis
from redis._parsers.base import BaseParser
from redis.exceptions import ConnectionError, NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeout

from core.stores import HiredisPacking, RedisClient, is_cluster

RETRIES = 2  # a call that met a broken connection is sent again this many times at most


class _Protocol(asyncio.Protocol):
    """The connection: writes packed commands, and settles waiting calls with replies as they are read."""

    def __init__(self, loop: asyncio.AbstractEventLoop, hung_s: float) -> None:
        self.loop = loop
        self.hung_s = hung_s
        self.reader = hiredis.Reader()
        self.transport: asyncio.Transport | None = None
        self.waiting: deque[tuple[asyncio.Future[Any], float]] = deque()  # (call, when sent), in sent order
        self.deadlines: deque[tuple[float, asyncio.Future[Any]]] = deque()  # the same calls, for the timer
        self.timer: asyncio.TimerHandle | None = None
        self.lost: BaseException | None = None
        self.unsent: list[bytes] = []  # the commands of this turn of the event loop, written together at its end

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        waiting = self.waiting
        while (reply := self.reader.gets()) is not False:
            if not waiting:  # a reply nobody asked for: the stream is out of step
                self._break(ConnectionError("Redis answered a command never sent on this connection"))
                return
            call, _ = waiting.popleft()
            if call.done():  # past its deadline, or its caller cancelled it
                continue
            if isinstance(reply, hiredis.ReplyError):
                call.set_exception(_error(str(reply)))
            else:
                call.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(ConnectionError(f"the connection to Redis was lost: {exc or 'closed'}"))

    def send(self, packed: bytes, deadline: float) -> asyncio.Future[Any]:
        if self.lost is not None or self.transport is None or self.transport.is_closing():
            self._fail(ConnectionError("the connection to Redis is closed"))
            raise self.lost or ConnectionError("the connection to Redis is closed")
        call = self.loop.create_future()
        if not self.unsent:
            self.loop.call_soon(self._write)
        self.unsent.append(packed)
        self.waiting.append((call, self.loop.time()))
        self.deadlines.append((deadline, call))
        if self.timer is None:
            self.timer = self.loop.call_at(deadline, self._expire)
        return call

    def _write(self) -> None:
        """One write (one system call) for the commands of this turn of the event loop, not one a command."""
        unsent, self.unsent = self.unsent, []
        if self.lost is None and self.transport is not None and not self.transport.is_closing():
            self.transport.writelines(unsent)

    def _expire(self) -> None:
        """Fail the calls past their deadline; close a connection whose oldest call has waited ``hung_s``; arm
        the timer again at the oldest deadline still to come."""
        self.timer = None
        now = self.loop.time()
        deadlines = self.deadlines
        while deadlines and (deadlines[0][1].done() or deadlines[0][0] <= now):
            _, call = deadlines.popleft()
            if not call.done():
                call.set_exception(RedisTimeout("Redis did not answer in time"))
        if self.waiting and now - self.waiting[0][1] >= self.hung_s:
            self._break(ConnectionError(f"Redis has not answered for {self.hung_s:g} s"))
            return
        upcoming = [deadlines[0][0]] if deadlines else []
        if self.waiting:
            upcoming.append(self.waiting[0][1] + self.hung_s)
        if upcoming:
            self.timer = self.loop.call_at(min(upcoming), self._expire)

    def _break(self, error: ConnectionError) -> None:
        self._fail(error)
        if self.transport is not None:
            self.transport.abort()

    def _fail(self, error: ConnectionError) -> None:
        if self.lost is None:
            self.lost = error
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        for call, _ in self.waiting:
            if not call.done():
                call.set_exception(error)
        self.waiting.clear()
        self.deadlines.clear()


class Line:
    """Commands to one Redis on one shared connection, each within its own deadline."""

    def __init__(self, host: str, port: int, *, setup: list[tuple[Any, ...]], hung_s: float, connect_s: float) -> None:
        self.host = host
        self.port = port
        self.setup = setup  # AUTH and SELECT, sent first on each new connection
        self.hung_s = hung_s
        self.connect_s = connect_s
        self._protocol: _Protocol | None = None
        self._connecting: asyncio.Task[_Protocol] | None = None

    @classmethod
    def of(cls, redis: RedisClient) -> Line | None:
        """A line to the Redis of ``redis``, with its address, credentials, database and timeouts; None when that
        is not a single Redis over TCP."""
        if is_cluster(redis):
            return None
        pool = redis.connection_pool  # type: ignore[union-attr]
        if pool.connection_class is not HiredisPacking:
            return None
        options = pool.connection_kwargs
        setup: list[tuple[Any, ...]] = []
        if options.get("password"):
            user = options.get("username")
            setup.append(("AUTH", user, options["password"]) if user else ("AUTH", options["password"]))
        if options.get("db"):
            setup.append(("SELECT", options["db"]))
        timeout_s = options.get("socket_timeout") or 1.0
        return cls(
            options.get("host", "localhost"),
            int(options.get("port", 6379)),
            setup=setup,
            hung_s=timeout_s,
            connect_s=options.get("socket_connect_timeout") or timeout_s,
        )

    async def call(self, timeout_s: float, *args: Any) -> Any:
        """The reply to one command, or its error (ResponseError and its kinds, as redis-py raises them); redis-py's
        TimeoutError past ``timeout_s``, ConnectionError when Redis cannot be reached in it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        packed = hiredis.pack_command(args)
        for attempt in range(RETRIES + 1):
            protocol = self._protocol
            try:
                if protocol is None or protocol.lost is not None:
                    protocol = await self._connected(deadline)
                return await protocol.send(packed, deadline)
            except (ConnectionError, OSError) as exc:
                if attempt == RETRIES or loop.time() >= deadline:
                    raise exc if isinstance(exc, ConnectionError) else ConnectionError(str(exc)) from exc
        raise AssertionError("unreachable")

    async def evalsha(self, timeout_s: float, script: Any, keys: list[Any], args: list[Any]) -> Any:
        """A registered script's answer (``script``: redis-py's AsyncScript, for its text and digest), loaded first
        when Redis does not have it (NOSCRIPT: nothing ran)."""
        try:
            return await self.call(timeout_s, "EVALSHA", script.sha, len(keys), *keys, *args)
        except NoScriptError:
            await self.call(timeout_s, "SCRIPT", "LOAD", script.script)
            return await self.call(timeout_s, "EVALSHA", script.sha, len(keys), *keys, *args)

    async def _connected(self, deadline: float) -> _Protocol:
        """The connection, made (once, for every caller waiting on it) if it is not there."""
        if self._connecting is None or self._connecting.done():
            self._connecting = asyncio.ensure_future(self._connect())
            self._connecting.add_done_callback(_retrieved)  # a caller past its deadline leaves it unread
        try:
            async with asyncio.timeout_at(deadline):
                return await asyncio.shield(self._connecting)
        except TimeoutError as exc:
            raise RedisTimeout("Redis could not be reached in time") from exc

    async def _connect(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(self.connect_s):
            _, protocol = await loop.create_connection(lambda: _Protocol(loop, self.hung_s), self.host, self.port)
            try:
                for command in self.setup:
                    await protocol.send(hiredis.pack_command(command), loop.time() + self.connect_s)
            except BaseException:
                protocol._break(ConnectionError("Redis refused the connection's setup"))
                raise
        self._protocol = protocol
        return protocol

    async def aclose(self) -> None:
        if self._connecting is not None and not self._connecting.done():
            self._connecting.cancel()
        if self._protocol is not None and self._protocol.transport is not None:
            self._protocol.transport.close()
        self._protocol = None


def _retrieved(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()


def _error(text: str) -> ResponseError:
    """An error reply as redis-py raises it (NOSCRIPT as NoScriptError, READONLY as ReadOnlyError...)."""
    error: ResponseError = BaseParser.parse_error(text)  # type: ignore[no-untyped-call]
    return error
