"""The connection's coalescing transport (gateway/connections.py): what one turn of the event loop writes goes out
in one write, in order; past its limit, at once; closing sends what is held first; aborting drops it; nothing is
written to a closing transport."""

from __future__ import annotations

import asyncio

from gateway.connections import Coalescing


class Recording:
    """A transport that records what reaches it (the real one is uvloop's socket transport)."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.calls: list[str] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)
        self.calls.append("write")

    def close(self) -> None:
        self.closing = True
        self.calls.append("close")

    def abort(self) -> None:
        self.closing = True
        self.calls.append("abort")

    def is_closing(self) -> bool:
        return self.closing

    def get_extra_info(self, name: str) -> str:
        return f"extra {name}"


async def test_the_writes_of_one_turn_go_out_in_one_write_in_order() -> None:
    raw = Recording()
    t = Coalescing(raw, asyncio.get_running_loop())  # type: ignore[arg-type]
    t.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    t.write(b"{}")
    assert raw.writes == []  # held until the turn ends
    await asyncio.sleep(0)
    assert raw.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]
    t.write(b"next")  # the next turn's writes go out in the next write
    await asyncio.sleep(0)
    assert raw.writes[1:] == [b"next"]
    await asyncio.sleep(0)
    assert len(raw.writes) == 2  # nothing held: no empty write


async def test_closing_sends_what_is_held_first_and_aborting_drops_it() -> None:
    loop = asyncio.get_running_loop()
    raw = Recording()
    t = Coalescing(raw, loop)  # type: ignore[arg-type]
    t.write(b"head")
    t.write(b"body")
    t.close()
    assert raw.calls == ["write", "close"] and raw.writes == [b"headbody"]
    await asyncio.sleep(0)
    assert raw.calls == ["write", "close"]  # the turn's end finds nothing more to write

    raw = Recording()
    t = Coalescing(raw, loop)  # type: ignore[arg-type]
    t.write(b"head")
    t.abort()
    await asyncio.sleep(0)
    assert raw.calls == ["abort"] and raw.writes == []


async def test_nothing_is_written_once_the_transport_is_closing_and_the_rest_is_the_transports() -> None:
    raw = Recording()
    t = Coalescing(raw, asyncio.get_running_loop())  # type: ignore[arg-type]
    t.write(b"late")
    raw.closing = True  # the peer went away within the turn
    await asyncio.sleep(0)
    assert raw.writes == []
    assert t.is_closing() and t.get_extra_info("peername") == "extra peername"


async def test_more_than_the_limit_held_goes_out_at_once_so_flow_control_still_sees_it() -> None:
    raw = Recording()
    t = Coalescing(raw, asyncio.get_running_loop())  # type: ignore[arg-type]
    chunk = b"x" * 40_000
    t.write(b"")  # nothing to send: nothing held
    t.write(chunk)
    assert raw.writes == []
    t.write(chunk)  # 80,000 bytes held: over the limit
    assert raw.writes == [chunk + chunk]
    t.write(b"tail")
    await asyncio.sleep(0)
    assert raw.writes == [chunk + chunk, b"tail"]
