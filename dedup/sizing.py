"""Sizing a blocked Bloom filter: pure arithmetic, no I/O.

The filter is *blocked*: each invoice key picks one 256-bit block and sets its k bits inside it, so that one
GETRANGE and at most one SETRANGE per key do the whole test-and-set (measured: a bit at a time costs about
1 µs per bit in a Redis script, ten times a block's cost). A blocked filter needs more bits per key than a
classic one for the same false-positive rate; ``size`` accounts for that exactly, by summing over the Poisson
load of a block, rather than with the classic formula. At a false-positive rate of 0.1% that gives k = 9 and
2.07 bytes a key (benchmarks/README.md, "Deduplication", measures it).
"""

from __future__ import annotations

import math

BLOCK_BITS = 256
MAX_K = 12  # positions available in a digest (core.shards)


def false_positive_rate(bits_per_key: float, k: int, block_bits: int = BLOCK_BITS) -> float:
    """Expected false-positive rate of a blocked Bloom filter with ``bits_per_key`` bits per stored key."""
    if bits_per_key <= 0:
        return 1.0
    load = block_bits / bits_per_key  # keys per block, on average
    term = math.exp(-load)  # Poisson probability of a block holding 0 keys
    total = 0.0
    for keys_in_block in range(int(load * 6 + 60)):
        if keys_in_block:
            term *= load / keys_in_block
        total += term * (1 - (1 - 1 / block_bits) ** (k * keys_in_block)) ** k
    return total


def fill_ratio(keys: int, k: int, blocks: int, block_bits: int = BLOCK_BITS) -> float:
    """Expected share of bits set after ``keys`` insertions."""
    if blocks <= 0:
        return 1.0
    return 1 - math.exp(-k * keys / (blocks * block_bits))


def bits_per_key(target_fpr: float, k: int) -> float | None:
    """The fewest bits per key at which ``k`` positions reach ``target_fpr`` (None if no size does)."""
    low, high = 1.0, 128.0
    if false_positive_rate(high, k) > target_fpr:
        return None
    for _ in range(40):
        mid = (low + high) / 2
        low, high = (mid, high) if false_positive_rate(mid, k) > target_fpr else (low, mid)
    return high


def blocks_for(capacity: int, bits: float) -> int:
    return max(1, math.ceil(capacity * bits / BLOCK_BITS))


def size(capacity: int, target_fpr: float) -> tuple[int, int]:
    """The (k, total blocks) that hold ``capacity`` keys at ``target_fpr`` with the fewest bits."""
    options = [(bits, k) for k in range(2, MAX_K + 1) if (bits := bits_per_key(target_fpr, k)) is not None]
    if not options:
        raise ValueError(f"no blocked filter reaches a false-positive rate of {target_fpr}")
    bits, k = min(options)
    return k, blocks_for(capacity, bits)
