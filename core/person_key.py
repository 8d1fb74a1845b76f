"""The person key (``GATEWAY_PERSON_SECRET``) cannot change during a campaign, and every gateway and worker
refuses to start with another one.

Everything that names a person, a user, a device or a buyer's name is a keyed hash under this key
(core/hashing.py): the caps count per person hash and the rate limits per user and device hash (Redis), the
invoices, the feed's ``person``, the risk rules and the blacklist hold hashes (PostgreSQL), and the national
platform received them. With a new key the same consumer becomes a new person mid-campaign: caps start again
from zero (a consumer could take twice the prizes), the risk rules lose the history they count, the draw
service sees two persons, and the blacklist names nobody. There is no way to re-hash: the raw identities were
never stored. So the key is fixed for a campaign; a new campaign may start with a new key (deploy/README.md).

The first process to start with a campaign records the key's fingerprint (HMAC of a fixed text, revealing
nothing of the key); any later one compares and refuses a different key with a ``ConfigError``.
"""

from __future__ import annotations

import hmac

import asyncpg

from core.settings import ConfigError

CONTEXT = b"prize-gateway person key fingerprint v1"
RECORD = """
INSERT INTO person_keys (campaign, fingerprint) VALUES ($1, $2)
ON CONFLICT (campaign) DO UPDATE SET campaign = excluded.campaign
RETURNING fingerprint, since
"""


def fingerprint(secret: str) -> str:
    """16 hex digits that tell two keys apart and say nothing of either."""
    return hmac.digest(secret.encode(), CONTEXT, "sha256").hex()[:16]


async def check(pool: asyncpg.Pool, campaign: str, secret: str) -> None:
    """Record this key for ``campaign`` if it has none yet; raise ``ConfigError`` if it started with another."""
    row = await pool.fetchrow(RECORD, campaign, fingerprint(secret))
    if row is not None and row["fingerprint"] != fingerprint(secret):
        raise ConfigError(
            "GATEWAY_PERSON_SECRET",
            "",
            f"not the key campaign {campaign} started with on {row['since']:%Y-%m-%d}: its caps, feed and risk"
            " rules hash persons with that one, and it cannot change mid-campaign (docs/security.md)",
        )
