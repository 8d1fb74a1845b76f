import pytest
from redis.asyncio.connection import Connection, UnixDomainSocketConnection
from redis.exceptions import DataError

from core.settings import Stores
from core.stores import HiredisPacking, open_redis

ARGS = [
    ("EVALSHA", "ab" * 20, 3, "{rl:c}:req", b"{rl:c}:inv", "键", 1.5, 0.1, 1e20, -3, 2**70, b"\x00\xff", ""),
    ("SCRIPT EXISTS", "x"),
    (b"CONFIG GET", "maxmemory"),
    ("XADD", "{s00}:intake", "*", "~request", "r1", "2634", b"\x93\x01\x02"),
]


@pytest.mark.parametrize("args", ARGS)
def test_hiredis_packing_writes_the_bytes_redis_py_writes(args: tuple[object, ...]) -> None:
    ours = b"".join(HiredisPacking().pack_command(*args))
    theirs = b"".join(Connection().pack_command(*args))
    assert ours == theirs


def test_an_argument_redis_cannot_take_is_a_data_error() -> None:
    with pytest.raises(DataError):
        HiredisPacking().pack_command("SET", "k", None)


def test_tcp_clients_pack_with_hiredis_and_unix_sockets_keep_their_class() -> None:
    assert open_redis(Stores()).connection_pool.connection_class is HiredisPacking
    unix = open_redis(Stores(redis_url="unix:///tmp/redis.sock"))
    assert unix.connection_pool.connection_class is UnixDomainSocketConnection


def test_a_client_whose_reads_block_waits_that_long_more_for_a_reply() -> None:
    """The workers' client (XREADGROUP with BLOCK) times out after the block and the usual timeout, on one Redis or
    a cluster; every other client after the usual timeout."""
    plain, cluster = Stores(redis_timeout_ms=500), Stores(redis_timeout_ms=500, redis_cluster=True)
    assert open_redis(plain).connection_pool.connection_kwargs["socket_timeout"] == 0.5
    assert open_redis(plain, block_ms=200).connection_pool.connection_kwargs["socket_timeout"] == 0.7
    assert open_redis(cluster, block_ms=200).connection_kwargs["socket_timeout"] == 0.7  # type: ignore[attr-defined]


class _ClosedWriter:
    """A stream writer whose transport was closed under it: uvloop raises RuntimeError on a write."""

    def writelines(self, data: object) -> None:
        raise RuntimeError("unable to perform operation on <TCPTransport closed=True>; the handler is closed")

    async def drain(self) -> None:
        return None

    def close(self) -> None:
        return None

    async def wait_closed(self) -> None:
        return None


def test_a_write_on_a_closed_transport_is_a_connection_error_and_drops_the_connection() -> None:
    import asyncio

    from redis.exceptions import ConnectionError as RedisConnectionError

    async def send() -> tuple[type[BaseException], bool]:
        conn = HiredisPacking(host="127.0.0.1", port=1, socket_timeout=0.5)
        conn._reader, conn._writer = object(), _ClosedWriter()  # type: ignore[assignment]
        try:
            await conn.send_packed_command(conn.pack_command("GET", "k"), check_health=False)
        except BaseException as exc:  # what it raises is the point
            return type(exc), conn.is_connected
        raise AssertionError("the write went through")

    raised, connected = asyncio.run(send())
    assert issubclass(raised, RedisConnectionError)  # retried by the client's Retry, never a 500
    assert not connected
