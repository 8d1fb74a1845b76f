"""Receipts verified offline (docs/receipts.md): the gateway's Ed25519 signature over the Merkle root of a
request's keys, and the invoice's path to that root."""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any, NamedTuple

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


class Verdict(NamedTuple):
    valid: bool
    why: str  # "" when valid
    accepted_at_ms: int | None = None
    kid: str | None = None


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def keys_of(jwks: dict[str, Any]) -> dict[str, tuple[bytes, str, str | None]]:
    """``GET /v1/keys``'s answer as kid -> (raw public key, not_before, not_after)."""
    return {k["kid"]: (_unb64url(k["x"]), k["not_before"], k["not_after"]) for k in jwks["keys"]}


def root_of(key: str, path: bytes) -> bytes | None:
    if len(path) % 33:
        return None
    node = hashlib.sha256(b"\x00" + key.encode()).digest()
    for at in range(0, len(path), 33):
        side, partner = path[at], path[at + 1 : at + 33]
        if side not in (0, 1):
            return None
        pair = partner + node if side == 0 else node + partner
        node = hashlib.sha256(b"\x01" + pair).digest()
    return node


def verify(receipt: str, key: str, channel: str, keys: dict[str, tuple[bytes, str, str | None]]) -> Verdict:
    """Whether ``receipt`` proves that ``channel`` had ``key`` accepted (``keys``: ``keys_of(GET /v1/keys)``).
    The key's validity (``not_before``, ``not_after``) is for the caller to weigh against ``accepted_at_ms``."""
    parts = receipt.split(".")
    if len(parts) != 5 or parts[0] != "v2" or not (parts[2].isascii() and parts[2].isdigit()):
        return Verdict(False, "not a receipt of format v2")
    _, kid, at, signature, path = parts
    if kid not in keys:
        return Verdict(False, f"no published key {kid}", kid=kid)
    try:
        root = root_of(key, _unb64url(path))
        if root is None:
            return Verdict(False, "a broken path", kid=kid)
        text = f"prize-invoice-receipt v2\n{kid}\n{channel}\n{at}\n{root.hex()}".encode()
        Ed25519PublicKey.from_public_bytes(keys[kid][0]).verify(_unb64url(signature), text)
    except (InvalidSignature, ValueError, binascii.Error):
        return Verdict(False, "the signature does not match", kid=kid)
    return Verdict(True, "", int(at), kid)
