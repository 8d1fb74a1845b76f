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
