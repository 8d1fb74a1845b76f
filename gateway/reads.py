"""Which PostgreSQL server a read goes to, when the feed and status reads have a streaming replica of their own
(``GATEWAY_DATABASE_READ_URL``).

The feed reads the replica: a batch sealed on the primary appears there a moment later (its long poll looks
again every ``REPLICA_POLL_S``, since the primary's NOTIFY does not reach a replica's reader). A status read
must see the channel's own writes: the status right after its reversal is ``reversed``, whatever the replica's
lag. So a channel's write notes the primary's WAL position in Redis (``note_write``), and its status reads go
to the replica only once the replica has replayed past that position, else to the primary (``for_channel``).
Other changes (the workers', a review's) are seen on the replica when it has replayed them.
"""

from __future__ import annotations

import asyncpg

from core import keys
from core.errors import STORE_ERRORS
from core.stores import RedisClient

REPLICA_POLL_S = 0.1  # how often a feed long poll reads the replica again while it waits
# The WAL position as a number of bytes, which Redis can keep the largest of (a sorted set's GT).
PRIMARY_POSITION = "SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::float8"
REPLAYED_PAST = "SELECT coalesce(pg_last_wal_replay_lsn() - '0/0'::pg_lsn >= $1::float8, false)"


async def note_write(pool: asyncpg.Pool, read_pool: asyncpg.Pool, redis: RedisClient, channel: str) -> None:
    """After a channel's write has committed on the primary: note the primary's WAL position, so that the
    channel's next reads wait for the replica to pass it (nothing to note without a replica)."""
    if read_pool is pool:
        return
    position = await pool.fetchval(PRIMARY_POSITION)
    await redis.zadd(keys.written(channel), {"wal": position}, gt=True)


async def for_channel(pool: asyncpg.Pool, read_pool: asyncpg.Pool, redis: RedisClient, channel: str) -> asyncpg.Pool:
    """The pool a status read of ``channel`` goes to: the replica once it has replayed the channel's last
    write, else the primary (the primary too when Redis or the replica cannot say)."""
    if read_pool is pool:
        return pool
    try:
        position = await redis.zscore(keys.written(channel), "wal")
        if position is None or await read_pool.fetchval(REPLAYED_PAST, position):
            return read_pool
    except STORE_ERRORS:
        pass
    return pool
