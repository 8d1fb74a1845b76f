"""Opening the stores' clients, the same way in every process."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError, TimeoutError

from gateway.settings import Settings


def open_redis(settings: Settings) -> Redis:
    """A Redis client that retries a command twice, within milliseconds, when its connection broke.

    A pooled connection goes stale when Redis restarts; the retry reconnects. Every write the gateway makes
    is safe to repeat: the claim script recognises its own claim, and a nonce is spent with a token that
    recognises its own request.
    """
    timeout_s = settings.redis_timeout_ms / 1000
    return Redis.from_url(
        settings.redis_url,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        retry=Retry(ExponentialBackoff(cap=0.05, base=0.005), retries=2),
        retry_on_error=[ConnectionError, TimeoutError],
    )
