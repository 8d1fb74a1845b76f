"""Every Redis key name of the project, in one place.

Keys that one Lua script touches together share a hash tag (``{...}``) so that the same script runs on a
Redis Cluster. The vertical slice has one intake shard, ``{i0}``; the dedup issue shards it by key hash.
"""

from __future__ import annotations

INTAKE_TAG = "{i0}"
STREAM = f"{INTAKE_TAG}:intake"
CLAIMS = f"{INTAKE_TAG}:claims"
GROUP = "workers"


def nonce(client_id: str, nonce: str) -> str:
    return f"nonce:{{{client_id}}}:{nonce}"
