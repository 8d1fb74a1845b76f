"""The keyed hash is HMAC-SHA256 (core/hashing.py computes it from the key's padded blocks, once per key)."""

from __future__ import annotations

import hmac

from hypothesis import given
from hypothesis import strategies as st

from core.hashing import keyed_hash


@given(st.text(max_size=200), st.text(max_size=300))
def test_keyed_hash_is_hmac_sha256(secret: str, value: str) -> None:
    assert keyed_hash(secret, value) == hmac.digest(secret.encode(), value.encode(), "sha256").hex()


def test_keys_at_and_past_the_block_size() -> None:
    for n in (0, 1, 63, 64, 65, 200):
        secret = "k" * n
        assert keyed_hash(secret, "device:c:d1") == hmac.digest(secret.encode(), b"device:c:d1", "sha256").hex()
