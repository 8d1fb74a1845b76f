"""The one error a store's failure becomes: ``StoreUnavailable``, which the gateway answers with 503 and
``Retry-After`` in one place (gateway/errors.py), and the one tuple of exceptions that mean "a store failed"."""

from __future__ import annotations

import asyncpg
import asyncpg.exceptions as pg
import redis.exceptions as rx
from redis.exceptions import RedisError

# What a Redis or PostgreSQL call raises when the store is down, slow or unreachable (redis-py's timeouts are
# RedisError or the builtin TimeoutError, asyncpg's connection losses InterfaceError or OSError).
STORE_ERRORS: tuple[type[BaseException], ...] = (
    RedisError,
    OSError,
    TimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
)

# The store failures that say nothing of the work that met them: the store was down, slow, full, read-only
# while failing over, or rolled the transaction back for a conflict. The same work may succeed a moment later.
# Any other (a value PostgreSQL refused, a script error) may be the work's own fault.
PASSING_ERRORS: tuple[type[BaseException], ...] = (
    rx.ConnectionError,
    rx.TimeoutError,
    rx.ReadOnlyError,
    rx.OutOfMemoryError,
    rx.TryAgainError,
    rx.ClusterError,
    rx.AskError,
    rx.SlotNotCoveredError,
    rx.MaxConnectionsError,
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    pg.PostgresConnectionError,
    pg.InsufficientResourcesError,
    pg.OperatorInterventionError,
    pg.TransactionRollbackError,
    pg.LockNotAvailableError,
    pg.ObjectInUseError,
    pg.ReadOnlySQLTransactionError,
)


class StoreUnavailable(Exception):
    """A store did not answer: the caller may retry after ``retry_after_s``. ``detail`` says what could not be
    done, for the answer (never a secret or a key)."""

    def __init__(self, detail: str, retry_after_s: int = 1) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry_after_s = retry_after_s
