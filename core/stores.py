"""Opening the stores' clients (Redis or a Redis Cluster, the PostgreSQL pools), the same way in every process."""

from __future__ import annotations

from typing import Any

import asyncpg
import hiredis
from redis.asyncio import Redis, RedisCluster
from redis.asyncio.connection import Connection
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ClusterDownError, ConnectionError, DataError, SlotNotCoveredError

from core.settings import Stores

# What every part is handed: a single Redis or a Redis Cluster (``GATEWAY_REDIS_CLUSTER``). The commands and
# the scripts are the same; the few places that differ ask ``isinstance(redis, RedisCluster)``: reading
# several streams (workers/stream.py), a script call acknowledged by replicas (core/acks.py), a script's NOSCRIPT
# in a pipeline (core/lua.py), Redis's memory (gateway/ops.py).
RedisClient = Redis | RedisCluster


class HiredisPacking(Connection):
    """A TCP connection that packs commands with hiredis (C), as redis-py's synchronous client does when hiredis
    is installed. The asyncio client packs in Python, re-joining its buffer once per argument: a 100-invoice
    script call spent about 250 µs there, 43 µs with hiredis (the same bytes)."""

    async def _send_packed_command(self, command: Any) -> None:
        """A write on a transport already closed under the connection (a cluster client's slot-map refresh
        cancelled mid-disconnect by a caller's timeout leaves one) is a broken connection: uvloop raises
        RuntimeError there, which redis-py would let through as a 500; as ConnectionResetError it drops the
        connection and the command is retried on a new one (tests/unit/test_stores.py)."""
        try:
            await super()._send_packed_command(command)
        except RuntimeError as exc:
            raise ConnectionResetError(str(exc)) from exc

    def pack_command(self, *args: Any) -> list[bytes]:
        first = args[0]
        head = tuple(first.encode().split()) if isinstance(first, str) else tuple(first.split())
        try:
            return [hiredis.pack_command(head + args[1:])]  # type: ignore[arg-type]  # the stub says a 1-tuple
        except TypeError as exc:  # None, a list...: what redis-py's own packer refuses too (and a bytearray)
            raise DataError(str(exc)) from exc


class Cluster(RedisCluster):
    """redis-py's cluster client, retrying as ``open_redis`` says: a broken connection, or a slot without a
    primary during a failover, is retried on a fresh slot map; a timeout is not (a hung node stays hung)."""

    ERRORS_ALLOW_RETRY = (ConnectionError, ClusterDownError, SlotNotCoveredError)  # type: ignore[assignment]


def open_redis(stores: Stores, block_ms: int = 0) -> RedisClient:
    """A Redis client (a cluster client with ``GATEWAY_REDIS_CLUSTER``) that retries a command twice when its
    connection broke. ``block_ms``: the longest one of its commands waits in Redis on purpose (the workers'
    ``XREADGROUP ... BLOCK``), added to its timeout: a wait that ends with entries still has
    ``GATEWAY_REDIS_TIMEOUT_MS`` for the reply. Without it, a worker read that had waited 200 ms had 300 ms left
    for thousands of entries, and timed out in bursts: the entries delivered were then taken up only by the
    sweep for lost replies, seconds later.

    A pooled connection goes stale when Redis restarts; the retry reconnects. Every write the gateway makes
    is safe to repeat: the claim script recognises its own claim, and a nonce is spent with a token that
    recognises its own request. A timeout is not retried: a Redis that does not answer in
    ``GATEWAY_REDIS_TIMEOUT_MS`` is slow or hung, and asking it twice more would triple the wait the README's
    failure policy promises. On a cluster, a retry first reads the slot map again (from any node that answers),
    so a command follows a failover once the replica has taken over; MOVED and ASK are followed as they come.
    """
    timeout_s = (stores.redis_timeout_ms + block_ms) / 1000
    retry = Retry(ExponentialBackoff(cap=0.05, base=0.005), retries=2, supported_errors=(ConnectionError,))
    if stores.redis_cluster:
        return _open_cluster(stores.redis_url, timeout_s, retry)
    options: dict[str, Any] = {}
    if stores.redis_url.startswith("redis://"):  # TCP: unix sockets and TLS keep their own connection classes
        options["connection_class"] = HiredisPacking
    return Redis.from_url(
        stores.redis_url,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        # Retry's default errors include TimeoutError: named here so that only a broken connection is retried.
        retry=retry,
        **options,
    )


def _open_cluster(url: str, timeout_s: float, retry: Retry) -> Cluster:
    cluster = Cluster.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, retry=retry)
    assert isinstance(cluster, Cluster)  # from_url is typed as returning the base class
    if url.startswith("redis://"):
        # The cluster client takes no connection class: its nodes are made with the one in its connection
        # options, which the nodes it discovers later copy (tests/unit/test_stores.py checks it still holds).
        cluster.connection_kwargs["connection_class"] = HiredisPacking
        for node in cluster.startup_nodes:
            node.connection_class = HiredisPacking
    return cluster


def is_cluster(redis: RedisClient) -> bool:
    return isinstance(redis, RedisCluster)


# Every pooled PostgreSQL session runs without JIT compilation. Our statements are short, but the planner's estimate
# of a statement over many rows (a CTE whose UPDATE it cannot see to be empty, a partitioned table's whole size)
# passes jit_above_cost, and compiling then cost more than running: re-verification's look for due entries, which
# finds none in a campaign without re-verification, took 88 ms a call after a 30,000-invoice burst, 59 of them JIT,
# and 549 µs of PostgreSQL time an invoice in a 100,000-invoice burst (benchmarks/pipeline_bench.py --pg-stats).
SESSION_SETTINGS = {"jit": "off"}


async def open_pool(
    stores: Stores,
    max_size: int,
    *,
    timed: bool,
    init: Any = None,  # called with each new connection (asyncpg's own init)
    read: bool = False,
) -> asyncpg.Pool:
    """A PostgreSQL pool. ``timed``: each statement times out after ``GATEWAY_DATABASE_TIMEOUT_MS`` (a request's
    queries); untimed for the workers and commands, whose batch transactions may rightly take longer. ``read``:
    on the streaming replica of ``GATEWAY_DATABASE_READ_URL`` when there is one (reads that may lag a little)."""
    pool: asyncpg.Pool = await asyncpg.create_pool(
        (stores.database_read_url or stores.database_url) if read else stores.database_url,
        min_size=1,
        max_size=max_size,
        command_timeout=stores.database_timeout_ms / 1000 if timed else None,
        init=init,
        server_settings=SESSION_SETTINGS,
    )
    return pool
