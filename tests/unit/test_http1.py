"""The verification calls' HTTP/1.1 client (workers/http1.py) against a loopback server that answers as told."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest

from workers.http1 import HttpError, Origin

Answer = Callable[[bytes, asyncio.StreamWriter], Awaitable[bool]]  # request -> keep the connection open?


@asynccontextmanager
async def server(answer: Answer) -> AsyncIterator[tuple[str, list[int], list[bytes]]]:
    """A server reading one request at a time (head + Content-Length body): its URL, the connections it
    accepted (a list growing by one each), the requests it read."""
    accepted: list[int] = []
    requests: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(1)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.lower().split(b"\r\n")
                length = next(int(line.split(b":")[1]) for line in lines if line.startswith(b"content-length"))
                request = head + await reader.readexactly(length)
                requests.append(request)
                if not await answer(request, writer):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/tax/", accepted, requests
    finally:
        srv.close()


def ok(body: bytes, status: int = 200) -> bytes:
    head = b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (status, len(body))
    return head + body


async def echo(request: bytes, writer: asyncio.StreamWriter) -> bool:
    writer.write(ok(request.partition(b"\r\n\r\n")[2]))
    return True


def test_answers_come_back_on_one_kept_alive_connection_under_the_base_path() -> None:
    async def run() -> None:
        async with server(echo) as (url, accepted, requests):
            origin = Origin(url, timeout_s=2)
            assert await origin.post("/verify", b'{"a":1}') == (200, b'{"a":1}')
            assert await origin.post("/verify", b"{}") == (200, b"{}")
            assert len(accepted) == 1
            assert requests[0].startswith(b"POST /tax/verify HTTP/1.1\r\n")
            assert b"\r\nContent-Length: 7\r\n" in requests[0]
            await origin.close()

    asyncio.run(run())


def test_calls_in_flight_each_get_their_own_answer() -> None:
    async def slow_echo(request: bytes, writer: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(0.01)
        return await echo(request, writer)

    async def run() -> None:
        async with server(slow_echo) as (url, accepted, _):
            origin = Origin(url, timeout_s=2)
            bodies = [b'{"n":%d}' % i for i in range(20)]
            answers = await asyncio.gather(*(origin.post("/v", b) for b in bodies))
            assert [a[1] for a in answers] == bodies
            assert len(accepted) == 20  # one connection per call in flight
            await asyncio.gather(*(origin.post("/v", b) for b in bodies))
            assert len(accepted) == 20  # and all of them reused
            await origin.close()

    asyncio.run(run())


def test_a_chunked_answer_and_one_that_ends_with_the_connection_are_read_whole() -> None:
    async def chunked(request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
        return True

    async def until_close(request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\nno such invoice")
        await writer.drain()
        return False

    async def run() -> None:
        async with server(chunked) as (url, _, _):
            assert await Origin(url, timeout_s=2).post("/v", b"{}") == (200, b"abcde")
        async with server(until_close) as (url, accepted, _):
            origin = Origin(url, timeout_s=2)
            assert await origin.post("/v", b"{}") == (404, b"no such invoice")
            assert await origin.post("/v", b"{}") == (404, b"no such invoice")
            assert len(accepted) == 2  # not reused: the server closed it

    asyncio.run(run())


def test_a_connection_the_server_dropped_while_idle_is_replaced_without_an_error() -> None:
    async def once(request: bytes, writer: asyncio.StreamWriter) -> bool:
        await echo(request, writer)
        await writer.drain()
        return False  # closes after answering, without saying so

    answered: set[int] = set()

    async def drops_on_second(request: bytes, writer: asyncio.StreamWriter) -> bool:
        if id(writer) in answered:  # the server's keep-alive ended just as the client reused it
            return False
        answered.add(id(writer))
        return await echo(request, writer)

    async def run() -> None:
        async with server(once) as (url, accepted, _):
            origin = Origin(url, timeout_s=2)
            for i in range(3):
                await asyncio.sleep(0.05)  # the close reaches the client first
                assert await origin.post("/v", b"%d" % i) == (200, b"%d" % i)
            assert len(accepted) == 3
        async with server(drops_on_second) as (url, accepted, requests):
            origin = Origin(url, timeout_s=2)
            for i in range(3):
                assert await origin.post("/v", b"%d" % i) == (200, b"%d" % i)
            assert len(accepted) == 3 and len(requests) == 5  # two calls were made again on a new connection

    asyncio.run(run())


def test_a_late_answer_times_out_and_never_reaches_the_next_call() -> None:
    async def late_first(request: bytes, writer: asyncio.StreamWriter) -> bool:
        if b'"late"' in request:
            await asyncio.sleep(0.3)
        return await echo(request, writer)

    async def run() -> None:
        async with server(late_first) as (url, accepted, _):
            origin = Origin(url, timeout_s=0.1)
            with pytest.raises(TimeoutError):
                await origin.post("/v", b'"late"')
            await asyncio.sleep(0.3)  # the late answer arrives meanwhile, on a connection given up
            assert await origin.post("/v", b'"next"') == (200, b'"next"')
            assert len(accepted) == 2

    asyncio.run(run())


def test_a_cancelled_call_gives_its_connection_up() -> None:
    async def slow(request: bytes, writer: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(0.1)
        return await echo(request, writer)

    async def run() -> None:
        async with server(slow) as (url, accepted, _):
            origin = Origin(url, timeout_s=2)
            call = asyncio.ensure_future(origin.post("/v", b'"first"'))
            await asyncio.sleep(0.02)
            call.cancel()
            with pytest.raises(asyncio.CancelledError):
                await call
            assert await origin.post("/v", b'"second"') == (200, b'"second"')
            assert len(accepted) == 2

    asyncio.run(run())


def test_no_answer_is_an_http_error() -> None:
    async def garbage(request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"SMTP ready\r\n\r\n")
        return True

    async def huge(request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(ok(b"x" * 5000))
        return True

    async def cut(request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part")
        await writer.drain()
        return False

    async def run() -> None:
        for answer in (garbage, huge, cut):
            async with server(answer) as (url, _, _):
                with pytest.raises(HttpError):
                    await Origin(url, timeout_s=2, max_body=4096).post("/v", b"{}")
        async with server(echo) as (url, _, _):
            pass  # closed: nothing listens there now
        with pytest.raises(HttpError):
            await Origin(url, timeout_s=2).post("/v", b"{}")
        with pytest.raises(ValueError):
            Origin("ftp://example/", timeout_s=1)

    asyncio.run(run())
