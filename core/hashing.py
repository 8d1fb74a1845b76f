"""The keyed hash that names a person, a user, a device or a buyer's name without revealing it.

The gateway hashes what a channel uploads; the workers hash what the tax service answers (the buyer's name) and
what the blacklist names, with the same key, so that the hashes compare equal and no personal data is stored.
"""

from __future__ import annotations

import hmac


def keyed_hash(secret: str, value: str) -> str:
    """HMAC-SHA256 of ``value`` under ``secret``, lowercase hex."""
    return hmac.digest(secret.encode(), value.encode(), "sha256").hex()


def name_ref(secret: str, name: str) -> str:
    """The hash of a buyer's name: the uploaded one and the tax service's, trimmed the same way."""
    return keyed_hash(secret, "name:" + name.strip())
