"""draw/ed25519.py, the standard-library verifier ``draw verify`` uses, held to the ``cryptography`` package."""

from __future__ import annotations

import os

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from draw import ed25519


def raw_public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def test_it_accepts_what_cryptography_signs_and_refuses_any_change() -> None:
    for size in (0, 1, 64, 1000):
        key = Ed25519PrivateKey.generate()
        message = os.urandom(size)
        signature = key.sign(message)
        assert ed25519.verify(raw_public(key), message, signature)
        assert not ed25519.verify(raw_public(key), message + b"x", signature)
        flipped = bytes([signature[0] ^ 1]) + signature[1:]
        assert not ed25519.verify(raw_public(key), message, flipped)
        assert not ed25519.verify(raw_public(Ed25519PrivateKey.generate()), message, signature)


def test_rfc_8032_test_vector_2() -> None:
    public = bytes.fromhex("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c")
    signature = bytes.fromhex(
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
        "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"
    )
    assert ed25519.verify(public, bytes([0x72]), signature)
    assert not ed25519.verify(public, bytes([0x73]), signature)


def test_malformed_inputs_are_refused_not_raised() -> None:
    key = Ed25519PrivateKey.generate()
    signature = key.sign(b"m")
    assert not ed25519.verify(raw_public(key)[:31], b"m", signature)
    assert not ed25519.verify(raw_public(key), b"m", signature[:63])
    assert not ed25519.verify(b"\xff" * 32, b"m", signature)  # y >= p: no point
    big_s = signature[:32] + (2**256 - 1).to_bytes(32, "little")
    assert not ed25519.verify(raw_public(key), b"m", big_s)
