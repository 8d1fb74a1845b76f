"""The shared connection to a single Redis (core/line.py), against the project's Redis, on uvloop (as the gateway
runs) and on asyncio's own loop: replies reach their own callers under concurrency, a call past its deadline fails
without putting the connection out of step, a lost connection is made again, a script Redis forgot is loaded, and
a Redis that does not answer is given up after the hung time."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import uvloop
from redis.exceptions import ConnectionError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeout

from core.line import Line
from core.settings import Settings
from core.stores import open_redis

LOOPS = {"uvloop": uvloop.run, "asyncio": asyncio.run}
# A script that holds Redis for ARGV[1] ms: later commands wait behind it, as behind a slow Redis.
BUSY = (
    "local t = redis.call('TIME') local stop = t[1] * 1000000 + t[2] + ARGV[1] * 1000"
    " repeat t = redis.call('TIME') until t[1] * 1000000 + t[2] >= stop return 'done'"
)


def run_with(settings: Settings, loop: str, body: Callable[[Line, Any], Coroutine[Any, Any, Any]]) -> Any:
    async def go() -> Any:
        redis = open_redis(settings.stores)
        line = Line.of(redis)
        assert line is not None
        try:
            return await body(line, redis)
        finally:
            await line.aclose()
            await redis.aclose()

    return LOOPS[loop](go())


@pytest.mark.parametrize("loop", LOOPS)
def test_each_caller_gets_its_own_reply(settings: Settings, loop: str) -> None:
    async def body(line: Line, redis: Any) -> None:
        tag = random.randrange(10**9)
        replies = await asyncio.gather(*(line.call(1.0, "ECHO", f"{tag}-{i}") for i in range(2000)))
        assert replies == [f"{tag}-{i}".encode() for i in range(2000)]
        await redis.set(f"line-test:{tag}", "text", ex=60)
        with pytest.raises(ResponseError, match="not an integer"):
            await line.call(1.0, "INCR", f"line-test:{tag}")
        assert await line.call(1.0, "PING") == b"PONG"

    run_with(settings, loop, body)


@pytest.mark.parametrize("loop", LOOPS)
def test_a_late_reply_is_dropped_and_the_connection_stays_in_step(settings: Settings, loop: str) -> None:
    async def body(line: Line, redis: Any) -> None:
        slow = asyncio.ensure_future(line.call(0.05, "EVAL", BUSY, 0, 300))
        await asyncio.sleep(0.01)
        behind = asyncio.ensure_future(line.call(1.0, "ECHO", "after"))
        with pytest.raises(RedisTimeout):
            await slow
        assert await behind == b"after"
        assert await line.call(1.0, "ECHO", "next") == b"next"

    run_with(settings, loop, body)


@pytest.mark.parametrize("loop", LOOPS)
def test_a_lost_connection_is_made_again(settings: Settings, loop: str) -> None:
    async def body(line: Line, redis: Any) -> None:
        assert await line.call(1.0, "PING") == b"PONG"
        mine = await line.call(1.0, "CLIENT", "ID")
        assert await redis.client_kill_filter(_id=mine) == 1
        assert await line.call(1.0, "ECHO", "again") == b"again"
        assert await line.call(1.0, "CLIENT", "ID") != mine

    run_with(settings, loop, body)


@pytest.mark.parametrize("loop", LOOPS)
def test_a_forgotten_script_is_loaded_again(settings: Settings, loop: str) -> None:
    async def body(line: Line, redis: Any) -> None:
        script = redis.register_script(f"return 'line-{random.randrange(10**9)}'")
        assert await line.evalsha(1.0, script, [], []) == script.script.split("'")[1].encode()
        await redis.script_flush()
        assert await line.evalsha(1.0, script, [], []) == script.script.split("'")[1].encode()

    run_with(settings, loop, body)


@pytest.mark.parametrize("loop", LOOPS)
def test_a_silent_redis_is_given_up_after_the_hung_time(loop: str) -> None:
    """A server that takes connections and never answers: each call fails at its deadline; once the oldest has
    waited the hung time the connection is closed, and the next call connects again."""

    async def go() -> tuple[int, list[str]]:
        writers: list[asyncio.StreamWriter] = []
        closed = asyncio.Event()

        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writers.append(writer)
            await reader.read()  # until the client closes
            closed.set()

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        line = Line("127.0.0.1", port, setup=[], hung_s=0.3, connect_s=1.0)
        outcomes = []
        try:
            for _ in range(3):
                try:
                    await line.call(0.05, "PING")
                except RedisTimeout:
                    outcomes.append("timeout")
            await asyncio.wait_for(closed.wait(), 2.0)
            try:
                await line.call(0.05, "PING")
            except RedisTimeout:
                outcomes.append("timeout")
        finally:
            await line.aclose()
            server.close()
            for writer in writers:
                writer.close()
                await writer.wait_closed()
            await server.wait_closed()
        return len(writers), outcomes

    accepted, outcomes = LOOPS[loop](go())
    assert outcomes == ["timeout"] * 4
    assert accepted == 2


@pytest.mark.parametrize("loop", LOOPS)
def test_an_unreachable_redis_is_a_connection_error(loop: str) -> None:
    async def go() -> None:
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        line = Line("127.0.0.1", port, setup=[], hung_s=0.3, connect_s=1.0)
        with pytest.raises(ConnectionError):
            await line.call(0.5, "PING")
        await line.aclose()

    LOOPS[loop](go())
