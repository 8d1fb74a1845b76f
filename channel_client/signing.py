"""The request signature (SPEC.md, "Authentication"): HMAC-SHA256 with the client's secret of five lines."""

from __future__ import annotations

import hashlib
import hmac


def canonical_string(method: str, path_and_query: str, timestamp: str, nonce: str, body: bytes) -> str:
    """Method, path with its raw query exactly as sent (no ``?`` without a query), timestamp, nonce, and the
    lowercase hex SHA-256 of the body bytes, joined by newlines."""
    return "\n".join((method.upper(), path_and_query, timestamp, nonce, hashlib.sha256(body).hexdigest()))


def sign(secret: str, canonical: str) -> str:
    """Lowercase hex HMAC-SHA256 of the canonical string, both as UTF-8."""
    return hmac.new(secret.encode(), canonical.encode(), hashlib.sha256).hexdigest()


def sign_headers(
    client_id: str, secret: str, method: str, path_and_query: str, body: bytes, timestamp: int, nonce: str
) -> dict[str, str]:
    """The four authentication headers of one request."""
    canonical = canonical_string(method, path_and_query, str(timestamp), nonce, body)
    return {
        "X-Client-Id": client_id,
        "X-Timestamp": str(timestamp),
        "X-Nonce": nonce,
        "X-Signature": sign(secret, canonical),
    }
