"""The request signature of SPEC.md, as the gateway checks it. (A channel's side, headers included, is
channel_client/signing.py, which stands alone; both are held to docs/vectors/signing.json. Receipts are
gateway/receipts.py; the keyed hash of persons core/hashing.py.)"""

from __future__ import annotations

import hashlib
import hmac

EMPTY_BODY_SHA256 = hashlib.sha256(b"").hexdigest()


def canonical_string(method: str, path_and_query: str, timestamp: str, nonce: str, body: bytes) -> str:
    """The five lines a caller signs: method, raw path with query, timestamp, nonce, body digest."""
    digest = hashlib.sha256(body).hexdigest() if body else EMPTY_BODY_SHA256
    return "\n".join((method.upper(), path_and_query, timestamp, nonce, digest))


def sign(secret: str, canonical: str) -> str:
    """Lowercase hex HMAC-SHA256 of the canonical string."""
    return hmac.new(secret.encode(), canonical.encode(), hashlib.sha256).hexdigest()


def signature_matches(secret: str, canonical: str, signature: str) -> bool:
    """Constant-time comparison of a presented signature with the expected one."""
    return hmac.compare_digest(sign(secret, canonical), signature)
