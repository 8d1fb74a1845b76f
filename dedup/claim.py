"""Cross-channel deduplication and durable enqueue (SPEC.md, pipeline stages 4 and 5), one round trip."""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources

from redis.asyncio import Redis

from gateway import keys

SCRIPT = resources.files(__package__).joinpath("claim_enqueue.lua").read_text()


class Claimer:
    """Runs ``claim_enqueue.lua`` (by EVALSHA, loaded on first use) against one Redis."""

    def __init__(self, redis: Redis) -> None:
        self._script = redis.register_script(SCRIPT)

    async def claim_and_enqueue(
        self, channel: str, accepted_at_ms: int, request_id: str, items: Sequence[tuple[str, bytes]]
    ) -> list[str | None]:
        """Claim each (key, packed invoice); enqueue the new ones with this request's duplicates.

        Returns, per item, None when it was new and is now queued, else the earlier claim's channel.
        """
        argv: list[str | bytes | int] = [channel, accepted_at_ms, request_id]
        for key, packed in items:
            argv.append(key)
            argv.append(packed)
        raw = await self._script(keys=[keys.CLAIMS, keys.STREAM], args=argv)
        return [_owner(value) for value in raw]


def _owner(value: bytes) -> str | None:
    if not value:
        return None
    return value.decode().partition("|")[0]
