"""The request signature of SPEC.md, and the gateway's receipts. (The keyed hash of persons is core/hashing.py.)"""

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


def sign_headers(
    client_id: str, secret: str, method: str, path_and_query: str, body: bytes, timestamp: int, nonce: str
) -> dict[str, str]:
    """The four authentication headers for a request: what a channel's client library does."""
    canonical = canonical_string(method, path_and_query, str(timestamp), nonce, body)
    return {
        "X-Client-Id": client_id,
        "X-Timestamp": str(timestamp),
        "X-Nonce": nonce,
        "X-Signature": sign(secret, canonical),
    }


def receipt(secret: str, key: str, channel: str, accepted_at_ms: int) -> str:
    """The gateway's proof that ``channel`` had ``key`` accepted at ``accepted_at_ms``.

    The time travels inside the receipt so that the channel can present it alone:
    ``<accepted_at_ms>.<hex HMAC-SHA256 of "key\\nchannel\\naccepted_at_ms">``.
    """
    mac = hmac.digest(secret.encode(), f"{key}\n{channel}\n{accepted_at_ms}".encode(), "sha256")
    return f"{accepted_at_ms}.{mac.hex()}"


def receipt_valid(secret: str, key: str, channel: str, presented: str) -> bool:
    """Whether ``presented`` is a receipt this gateway issued for ``key`` and ``channel``."""
    at, _, _ = presented.partition(".")
    if not (at.isascii() and at.isdigit() and len(at) <= 16 and presented.isascii()):
        return False
    return hmac.compare_digest(receipt(secret, key, channel, int(at)).encode(), presented.encode())
