import asyncio
import contextlib
from collections.abc import AsyncIterator

import msgspec

from workers import serve


def echo(body: bytes) -> serve.Reply:
    asked = msgspec.json.decode(body) if body else {}
    return serve.json(200, {"got": asked}, delay_s=float(asked.get("delay", 0)))


def broken(body: bytes) -> serve.Reply:
    raise RuntimeError("a bug")


ROUTES: serve.Routes = {
    ("POST", "/echo"): echo,
    ("GET", "/ok"): lambda body: serve.json(200, {"ok": True}),
    ("POST", "/broken"): broken,
}


@contextlib.asynccontextmanager
async def served() -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    server = await serve.start(ROUTES, "127.0.0.1", 0)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        yield reader, writer
    finally:
        writer.close()
        await server.close()


def post(path: str, body: bytes, *extra: str) -> bytes:
    head = [f"POST {path} HTTP/1.1", "Host: x", f"Content-Length: {len(body)}", *extra]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)).decode().split("\r\n")
    status = int(head[0].split()[1])
    headers = dict(line.split(": ", 1) for line in head[1:] if line)
    body = await reader.readexactly(int(headers["Content-Length"]))
    return status, headers, body


def test_answers_come_in_the_order_of_the_requests_even_when_a_later_one_is_ready_first() -> None:
    async def run() -> list[bytes]:
        async with served() as (reader, writer):
            writer.write(post("/echo", b'{"n":1,"delay":0.05}') + post("/echo", b'{"n":2}') + post("/echo", b'{"n":3}'))
            return [(await answer(reader))[2] for _ in range(3)]

    assert asyncio.run(run()) == [b'{"got":{"n":1,"delay":0.05}}', b'{"got":{"n":2}}', b'{"got":{"n":3}}']


def test_a_connection_is_kept_alive_and_a_chunked_body_is_read_whole() -> None:
    async def run() -> list[tuple[int, bytes]]:
        async with served() as (reader, writer):
            got = []
            for n in range(3):
                writer.write(post("/echo", f'{{"n":{n}}}'.encode()))
                status, _, body = await answer(reader)
                got.append((status, body))
            writer.write(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
            writer.write(b'4\r\n{"n"\r\n3\r\n:9}\r\n0\r\n\r\n')
            status, _, body = await answer(reader)
            got.append((status, body))
            return got

    assert asyncio.run(run()) == [
        (200, b'{"got":{"n":0}}'),
        (200, b'{"got":{"n":1}}'),
        (200, b'{"got":{"n":2}}'),
        (200, b'{"got":{"n":9}}'),
    ]


def test_an_unknown_path_is_404_a_wrong_method_405_a_failing_route_500_and_connection_close_is_honoured() -> None:
    async def run() -> tuple[int, int, int, dict[str, str], bytes]:
        async with served() as (reader, writer):
            writer.write(post("/nowhere", b"{}"))
            missing = (await answer(reader))[0]
            writer.write(b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
            wrong = (await answer(reader))[0]
            writer.write(post("/broken", b"{}"))
            assert (await answer(reader))[0] == 500  # and the connection goes on
            writer.write(b"GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" + post("/echo", b"{}"))
            status, headers, _ = await answer(reader)
            return missing, wrong, status, headers, await asyncio.wait_for(reader.read(), 5)

    missing, wrong, status, headers, after = asyncio.run(run())
    assert (missing, wrong, status) == (404, 405, 200)
    assert headers["Connection"] == "close" and after == b""  # closed by the server, the request after it unread


def test_a_request_that_does_not_parse_or_is_too_large_is_refused_and_the_connection_closed() -> None:
    async def refused(data: bytes) -> tuple[int, bytes]:
        async with served() as (reader, writer):
            writer.write(data)
            status, _, body = await answer(reader)
            assert await asyncio.wait_for(reader.read(), 5) == b""
            return status, body

    status, body = asyncio.run(refused(b"NOT HTTP AT ALL\r\n\r\n"))
    assert status == 400 and b"error" in body
    big = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (serve.MAX_BODY + 1)
    status, _ = asyncio.run(refused(big + b"x" * (serve.MAX_BODY + 1)))
    assert status == 413


def test_closing_the_server_closes_the_connections_and_cancels_answers_still_waiting() -> None:
    async def run() -> bytes:
        asked = asyncio.Event()

        def slow(body: bytes) -> serve.Reply:
            asked.set()
            return serve.json(200, {}, delay_s=30)

        server = await serve.start({("POST", "/slow"): slow}, "127.0.0.1", 0)
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(post("/slow", b"{}"))
        await asyncio.wait_for(asked.wait(), 5)  # the request is in, its answer waits
        await server.close()
        try:
            return await asyncio.wait_for(reader.read(), 5)
        finally:
            writer.close()

    assert asyncio.run(run()) == b""  # no answer, and no timer left to fire on a closed transport
