"""The blocked Bloom filter's sizing (dedup/sizing.py) against an independent oracle: a filter of the same
layout simulated in Python, and the textbook limits it must approach."""

from __future__ import annotations

import math
import random

import pytest

from dedup import sizing


def simulated_fpr(keys: int, blocks: int, k: int, probes: int, seed: int = 7) -> float:
    """Insert ``keys`` random keys into ``blocks`` 256-bit blocks (k bits each, in one block), then count how many
    of ``probes`` fresh keys find all their bits set."""
    rng = random.Random(seed)
    bits = [0] * blocks

    def place() -> tuple[int, int]:
        mask = 0
        for _ in range(k):
            mask |= 1 << rng.randrange(sizing.BLOCK_BITS)
        return rng.randrange(blocks), mask

    for _ in range(keys):
        block, mask = place()
        bits[block] |= mask
    hits = 0
    for _ in range(probes):
        block, mask = place()
        hits += bits[block] & mask == mask
    return hits / probes


@pytest.mark.parametrize(("bits_per_key", "k"), [(8.0, 4), (10.0, 6), (12.0, 7)])
def test_the_formula_matches_a_simulated_blocked_filter(bits_per_key: float, k: int) -> None:
    keys = 40_000
    blocks = round(keys * bits_per_key / sizing.BLOCK_BITS)
    expected = sizing.false_positive_rate(blocks * sizing.BLOCK_BITS / keys, k)
    seen = simulated_fpr(keys, blocks, k, probes=60_000)
    # 60,000 probes at p ~ 0.01: a standard error of about 4% of p; allow five of them.
    assert abs(seen - expected) <= 5 * math.sqrt(expected * (1 - expected) / 60_000) + 1e-4


def test_a_blocked_filter_needs_more_bits_than_the_classic_formula_says() -> None:
    for k in (4, 7, 10):
        classic = (1 - math.exp(-k / 10.0)) ** k  # 10 bits per key, no blocks
        assert sizing.false_positive_rate(10.0, k) > classic
        # Larger blocks spread the load evenly: the rate tends to the classic one (4,096-bit blocks: within 5%).
        assert sizing.false_positive_rate(10.0, k, block_bits=4096) == pytest.approx(classic, rel=0.05)


def test_more_bits_per_key_never_raise_the_rate() -> None:
    rates = [sizing.false_positive_rate(b, 7) for b in (4, 6, 8, 10, 14, 20, 30)]
    assert rates == sorted(rates, reverse=True)
    assert sizing.false_positive_rate(0, 7) == 1.0


@pytest.mark.parametrize("target", [0.01, 0.001, 0.0001])
def test_size_reaches_its_target_with_the_fewest_bits_over_k(target: float) -> None:
    capacity = 10_000_000
    k, blocks = sizing.size(capacity, target)
    assert 2 <= k <= sizing.MAX_K
    assert sizing.false_positive_rate(blocks * sizing.BLOCK_BITS / capacity, k) <= target * 1.001
    for other in range(2, sizing.MAX_K + 1):
        bits = sizing.bits_per_key(target, other)
        assert bits is None or bits * capacity >= blocks * sizing.BLOCK_BITS - sizing.BLOCK_BITS


def test_an_unreachable_rate_is_refused() -> None:
    assert sizing.bits_per_key(1e-12, 2) is None
    with pytest.raises(ValueError, match="no blocked filter"):
        sizing.size(1000, 1e-30)


def test_fill_ratio_and_blocks_round_up() -> None:
    assert sizing.blocks_for(1, 10.0) == 1
    assert sizing.blocks_for(100, 10.0) == math.ceil(1000 / 256)
    assert sizing.fill_ratio(0, 7, 100) == 0.0
    assert sizing.fill_ratio(1000, 7, 40) == pytest.approx(1 - math.exp(-7 * 1000 / (40 * 256)))
    assert sizing.fill_ratio(10, 7, 0) == 1.0
