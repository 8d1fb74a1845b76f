"""Every Redis key name of the project, in one place.

Keys that one Lua script touches together share a hash tag (``{sNN}``) so that the same script runs on a
Redis Cluster: an intake shard holds its stream, its in-flight claims and its Bloom filter. Invoice keys are
spread over the shards by hash (core/shards.py).
"""

from __future__ import annotations

import binascii

GROUP = "workers"
PIPELINE_DONE = "pipeline:done"  # running total of invoices the workers committed: its rate is the drain


def tag(shard: int) -> str:
    return f"{{s{shard:02d}}}"


def stream(shard: int) -> str:
    """The intake stream of a shard: what the workers consume."""
    return f"{tag(shard)}:intake"


def inflight(shard: int) -> str:
    """Hash of the shard's keys accepted and not yet committed (plus a grace period): key -> claim."""
    return f"{tag(shard)}:inflight"


def duplicates(shard: int) -> str:
    """Hash of the shard's keys another channel uploaded while they were in flight: "<channel>|<invoice key>" ->
    upload time (ms), until the workers have recorded them in PostgreSQL (plus a grace period), so that such a
    channel reads "duplicate" at once (dedup/inflight.py)."""
    return f"{tag(shard)}:dups"


def unacked(shard: int) -> str:
    """Hash of the shard's claims whose upload was answered 503 because replicas did not acknowledge it in time:
    invoice key -> the claim, so that the channel's retry finds the key as its own (dedup/claim_enqueue.lua)."""
    return f"{tag(shard)}:unacked"


def recheck(shard: int) -> str:
    """Sorted set of the shard's invoices waiting for another verification: member -> due time (ms)."""
    return f"{tag(shard)}:recheck"


def dead_letters(shard: int) -> str:
    """Stream of the shard's entries that could not be processed, each with its reason (``~reason``)."""
    return f"{tag(shard)}:dead"


def bloom_meta(shard: int) -> str:
    """Hash describing the shard's filter: k, block counts per generation, ready flag, keys per generation."""
    return f"{tag(shard)}:bloom"


def bloom(shard: int, generation: int) -> str:
    """The bitmap of one generation of the shard's filter."""
    return f"{tag(shard)}:bloom:{generation}"


def rate_limits(client_id: str) -> str:
    """The hash tag of a client's rate-limit states and nonces (ratelimit/limits.lua touches them together)."""
    return f"{{rl:{client_id}}}"


# ":ch" holds both of the channel's states in one key (one read, one write), where ":req" and ":inv" held one
# each before. During a rolling upgrade gateways of each format limit the channel on their own states, so for
# those minutes a channel may get up to twice its one-second burst: the channel limits protect the system, the
# shedding still guards the pipeline, and the old keys expire within a second or two of the last old gateway.
def channel_rates(client_id: str) -> str:
    """The GCRA states of a channel's request rate and invoice rate (two packed doubles)."""
    return f"{rate_limits(client_id)}:ch"


# ":u2:" and ":d2:": states of 16 packed bytes (two arrival times). Gateways of the older text format (":u:",
# ":d:") kept their own states while both ran, so a rolling upgrade or a rollback never read the other's.
def user_rate(client_id: str, user_ref: str) -> str:
    """The GCRA states (per minute, per day) of one of the channel's users."""
    return f"{rate_limits(client_id)}:u2:{user_ref}"


def device_rate(client_id: str, device_ref: str) -> str:
    """The GCRA states (per minute, per day) of one of the channel's devices."""
    return f"{rate_limits(client_id)}:d2:{device_ref}"


def nonce(client_id: str, nonce: str) -> str:
    """A spent nonce, under the client's rate-limit tag: an upload spends it in its rate-limit script call."""
    return f"{rate_limits(client_id)}:nonce:{nonce}"


def written(client_id: str) -> str:
    """Sorted set of one member ("wal"): the primary PostgreSQL's WAL position after the channel's last write,
    which its reads from a replica must wait for (gateway/reads.py)."""
    return f"{rate_limits(client_id)}:written"


# The digits of a person's reference (64 hex) that name its cap hashes: 96 bits, so that two of 100 million
# persons share a name with odds of about 1 in 10^13; the hash then takes 184 bytes where the whole reference
# made it 232 (MEMORY USAGE, issue 19).
CAP_PERSON_DIGITS = 24
# The last month whose cap hashes may still bear the whole reference (named before issue 19): the scripts move
# such a hash to its short name when they first meet it (ratelimit/caps.lua).
CAP_LONG_UNTIL = "202612"


def cap(shard: int, person: str, month: str, compact: bool = False) -> str:
    """A person's campaign-cap counts for one month (``month`` as ``yyyymm``), in cap shard ``shard``.

    ``compact`` (the months from the campaign's ``caps.compact_from``, ratelimit/caps.py): the same 96 bits of the
    reference in base64 (16 characters) after the month as ``yymm``: 30 characters, the longest name Redis
    keeps in jemalloc's 32-byte class with its header and end (31 to 35 took 16 bytes more). The hash then takes 136
    bytes for one invoice where this name and the seller's whole tax id made it 184 (MEMORY USAGE)."""
    if compact:
        reference = binascii.b2a_base64(bytes.fromhex(person[:CAP_PERSON_DIGITS]), newline=False).decode()
        return f"{{c{shard:02d}}}:cap:{month[2:]}{reference}"
    return f"{{c{shard:02d}}}:cap:{person[:CAP_PERSON_DIGITS]}:{month}"


def cap_long(shard: int, person: str, month: str) -> str:
    """The name ``cap`` gave before issue 19, with the whole reference: read until ``CAP_LONG_UNTIL`` has passed."""
    return f"{{c{shard:02d}}}:cap:{person}:{month}"


def verified(shard: int, invoice_key: str) -> str:
    """An invoice's verified facts as the tax service gave them (cached: an invoice is verified once)."""
    return f"{tag(shard)}:v:{invoice_key}"  # ":verified:" with a msgpack map before (workers/verify.py)


VERIFY_PACE = "verify:pace"  # the next free start time of a call to the tax service (µs), shared by all workers


# Families of keys by what they hold, for memory by family (gateway/memory.py, benchmarks/redis_memory.py).
FAMILIES = ("rate_states", "nonces", "caps", "verified", "stream", "inflight", "filters", "other")
_SHARD_FAMILIES = {
    b"intake": "stream",
    b"inflight": "inflight",
    b"bloom": "filters",
    b"v": "verified",
    b"verified": "verified",  # before the answers were packed (keys.verified)
}


def family(key: bytes) -> str:
    """The family of a key of this project (one of ``FAMILIES``), from its name alone."""
    tag_end = key.find(b"}:")
    if tag_end < 0:
        return "other"
    rest = key[tag_end + 2 :]
    if key.startswith(b"{rl:"):
        if rest.startswith(b"nonce:"):
            return "nonces"
        return "other" if rest == b"written" else "rate_states"
    if key.startswith(b"{c") and rest.startswith(b"cap:"):
        return "caps"
    if key.startswith(b"{s"):
        return _SHARD_FAMILIES.get(rest.split(b":", 1)[0], "other")
    return "other"
