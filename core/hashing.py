"""The keyed hash that names a person, a user, a device or a buyer's name without revealing it.

The gateway hashes what a channel uploads; the workers hash what the tax service answers (the buyer's name) and
what the blacklist names, with the same key, so that the hashes compare equal and no personal data is stored.
"""

from __future__ import annotations

import hmac
import unicodedata


def keyed_hash(secret: str, value: str) -> str:
    """HMAC-SHA256 of ``value`` under ``secret``, lowercase hex."""
    return hmac.digest(secret.encode(), value.encode(), "sha256").hex()


def normal_name(name: str) -> str:
    """A name as it is compared and hashed: Unicode NFKC (full-width letters and spaces become their usual
    forms), then trimmed. A name already in that form is unchanged, so its hash is what it was before NFKC."""
    return unicodedata.normalize("NFKC", name).strip()


def name_ref(secret: str, name: str, normal: bool = False) -> str:
    """The hash of a buyer's name: the uploaded one and the tax service's, normalised the same way (``normal``:
    the caller did already)."""
    return keyed_hash(secret, "name:" + (name if normal else normal_name(name)))


def user_ref(secret: str, channel: str, user_id: str) -> str:
    """The hash of a channel's consumer (``user.id``): the uploads' ``user_ref``, and what a channel's list of
    its user's invoices looks for."""
    return keyed_hash(secret, f"user:{channel}:{user_id}")
