"""The one error a store's failure becomes: ``StoreUnavailable``, which the gateway answers with 503 and
``Retry-After`` in one place (gateway/errors.py), and the one tuple of exceptions that mean "a store failed"."""

from __future__ import annotations

import asyncpg
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


class StoreUnavailable(Exception):
    """A store did not answer: the caller may retry after ``retry_after_s``. ``detail`` says what could not be
    done, for the answer (never a secret or a key)."""

    def __init__(self, detail: str, retry_after_s: int = 1) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry_after_s = retry_after_s
