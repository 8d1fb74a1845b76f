"""The request signature of SPEC.md (core/signing.py, re-exported here), and the gateway's receipts. (The keyed
hash of persons is core/hashing.py.)"""

from __future__ import annotations

import hmac

from core.signing import canonical_string, sign, sign_headers, signature_matches

__all__ = ["canonical_string", "receipt", "receipt_valid", "sign", "sign_headers", "signature_matches"]


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
