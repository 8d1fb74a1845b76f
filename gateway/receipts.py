"""Receipts: the gateway's signature that a channel had an invoice key accepted at a time, which anyone can
verify offline with the public key published at ``GET /v1/keys`` (docs/receipts.md; vectors in
docs/vectors/receipts.json).

``v2.<kid>.<accepted_at_ms>.<signature>.<path>``: one Ed25519 signature per request and acceptance time over
the root of a Merkle tree of the keys accepted together (so that a 100-invoice request costs one signature,
26 µs here, not a hundred), and each invoice's path from its leaf to that root:

- leaf = SHA-256(0x00 || key), node = SHA-256(0x01 || left || right); the leaves in the answer's order, paired
  left to right at each level, a last odd node going up unpaired;
- ``path``: base64url (no padding) of 33 bytes per level where the node has a sibling, leaf upwards: 0x00 when
  the sibling is on the left, 0x01 on the right, then the sibling's hash; empty for a request of one key;
- the signed text (UTF-8): ``prize-invoice-receipt v2\\n<kid>\\n<channel>\\n<accepted_at_ms>\\n<root hex>``;
  ``signature``: base64url (no padding) of the 64-byte Ed25519 signature;
- ``kid``: the first 16 hex digits of SHA-256 of the raw 32-byte public key.

Receipts of the first format (``<accepted_at_ms>.<hex HMAC-SHA256 of "key\\nchannel\\naccepted_at_ms">``) keep
verifying through ``POST /v1/receipts/verify`` while ``GATEWAY_RECEIPT_SECRET`` holds their key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

import asyncpg
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from core.settings import ConfigError, Secrets
from core.times import iso_ms

VERSION = "v2"
CONTEXT = "prize-invoice-receipt v2"
LEAF, NODE = b"\x00", b"\x01"  # the hash's domain prefixes
LEFT, RIGHT = b"\x00", b"\x01"  # where a path step's sibling sits


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def key_id(public_raw: bytes) -> str:
    """The key id: the first 16 hex digits of SHA-256 of the raw public key."""
    return hashlib.sha256(public_raw).hexdigest()[:16]


def signed_text(kid: str, channel: str, accepted_at_ms: int, root: bytes) -> bytes:
    return f"{CONTEXT}\n{kid}\n{channel}\n{accepted_at_ms}\n{root.hex()}".encode()


def leaf(key: str) -> bytes:
    return hashlib.sha256(LEAF + key.encode()).digest()


def tree(keys: Sequence[str]) -> tuple[bytes, list[bytes]]:
    """The root of the keys' Merkle tree and each key's path (its steps, leaf upwards, concatenated)."""
    level = [leaf(k) for k in keys]
    paths = [b""] * len(keys)
    under = [[i] for i in range(len(keys))]  # the leaves below each node of the level
    sha256 = hashlib.sha256
    while len(level) > 1:
        up, up_under = [], []
        for j in range(0, len(level) - 1, 2):
            left, right = level[j], level[j + 1]
            for i in under[j]:
                paths[i] += RIGHT + right
            for i in under[j + 1]:
                paths[i] += LEFT + left
            up.append(sha256(NODE + left + right).digest())
            up_under.append(under[j] + under[j + 1])
        if len(level) % 2:
            up.append(level[-1])
            up_under.append(under[-1])
        level, under = up, up_under
    return level[0], paths


def root_of(key: str, path: bytes) -> bytes | None:
    """The root a key's path leads to; None for a path that is not whole steps."""
    if len(path) % 33:
        return None
    node = leaf(key)
    for at in range(0, len(path), 33):
        side, sibling = path[at : at + 1], path[at + 1 : at + 33]
        if side == LEFT:
            node = hashlib.sha256(NODE + sibling + node).digest()
        elif side == RIGHT:
            node = hashlib.sha256(NODE + node + sibling).digest()
        else:
            return None
    return node


class Signer:
    """The gateway's receipt key (settings: ``GATEWAY_RECEIPT_SIGNING_KEY`` or ``..._FILE``)."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        self.public_raw = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.kid = key_id(self.public_raw)

    def receipts(self, channel: str, accepted: Iterable[tuple[str, int]]) -> dict[str, str]:
        """A receipt for each (key, accepted_at_ms), by key: one signature per acceptance time."""
        by_time: dict[int, list[str]] = {}
        for key, at_ms in accepted:
            by_time.setdefault(at_ms, []).append(key)
        found = {}
        for at_ms, keys in by_time.items():
            root, paths = tree(keys)
            signature = self._private.sign(signed_text(self.kid, channel, at_ms, root))
            head = f"{VERSION}.{self.kid}.{at_ms}.{b64url(signature)}."
            for key, path in zip(keys, paths, strict=True):
                found[key] = head + b64url(path)
        return found


def load_signer(secrets: Secrets) -> Signer:
    """The signing key the settings name, or ``ConfigError``: base64 of the 32-byte Ed25519 private key, or a
    file holding that or a PEM (PKCS #8) key, as ``openssl genpkey -algorithm ed25519`` writes."""
    if bool(secrets.receipt_signing_key) == bool(secrets.receipt_signing_key_file):
        raise ConfigError(
            "GATEWAY_RECEIPT_SIGNING_KEY", "", "set it, or GATEWAY_RECEIPT_SIGNING_KEY_FILE (one of them)"
        )
    if secrets.receipt_signing_key:
        return Signer(private_key("GATEWAY_RECEIPT_SIGNING_KEY", secrets.receipt_signing_key.encode()))
    try:
        data = Path(secrets.receipt_signing_key_file).read_bytes()
    except OSError as exc:
        raise ConfigError("GATEWAY_RECEIPT_SIGNING_KEY_FILE", "", f"cannot read it: {exc.strerror}") from exc
    return Signer(private_key("GATEWAY_RECEIPT_SIGNING_KEY_FILE", data))


def private_key(source: str, data: bytes) -> Ed25519PrivateKey:
    """An Ed25519 private key from PEM (PKCS #8) or base64 of its 32 bytes; ``ConfigError`` naming ``source``."""
    what = "neither a PEM Ed25519 private key nor base64 of its 32 bytes"
    if data.lstrip().startswith(b"-----BEGIN"):
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as exc:
            raise ConfigError(source, "", what) from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise ConfigError(source, "", "a PEM key of another algorithm than Ed25519")
        return key
    try:
        raw = base64.b64decode(data.strip(), validate=True)
    except binascii.Error as exc:
        raise ConfigError(source, "", what) from exc
    if len(raw) != 32:
        raise ConfigError(source, "", what)
    return Ed25519PrivateKey.from_private_bytes(raw)


def new_key_pem() -> bytes:
    """A fresh Ed25519 private key as PEM (the dev stack's, or ``gateway new-receipt-key``)."""
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def raw_base64(pem: bytes) -> str:
    """A PEM private key's 32 bytes in base64 (the form ``GATEWAY_RECEIPT_SIGNING_KEY`` takes)."""
    key = private_key("PEM", pem)
    raw = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    return base64.b64encode(raw).decode()


class Verdict(NamedTuple):
    valid: bool
    algorithm: str  # "ed25519" or "hmac-sha256"
    accepted_at_ms: int | None = None
    kid: str | None = None


def verify(receipt: str, key: str, channel: str, public_keys: dict[str, bytes], legacy_secret: str) -> Verdict:
    """Whether ``receipt`` proves that ``channel`` had ``key`` accepted, with the published keys (by kid) or,
    for a receipt of the first format, the legacy HMAC secret ("" when it is gone)."""
    parts = receipt.split(".")
    if len(parts) == 2:
        at = parts[0]
        ok = bool(legacy_secret) and at.isascii() and at.isdigit() and len(at) <= 16
        ok = ok and hmac.compare_digest(legacy_receipt(legacy_secret, key, channel, int(at)), receipt)
        return Verdict(ok, "hmac-sha256", int(at) if ok else None)
    if len(parts) != 5 or parts[0] != VERSION or not (parts[2].isascii() and parts[2].isdigit()):
        return Verdict(False, "ed25519")
    _, kid, at, signature, path = parts
    public = public_keys.get(kid)
    try:
        root = root_of(key, unb64url(path))
        if public is None or root is None:
            return Verdict(False, "ed25519", kid=kid)
        Ed25519PublicKey.from_public_bytes(public).verify(unb64url(signature), signed_text(kid, channel, int(at), root))
    except (InvalidSignature, ValueError, binascii.Error):
        return Verdict(False, "ed25519", kid=kid)
    return Verdict(True, "ed25519", int(at), kid)


def legacy_receipt(secret: str, key: str, channel: str, accepted_at_ms: int) -> str:
    """A receipt of the first format: ``<accepted_at_ms>.<hex HMAC-SHA256 of "key\\nchannel\\naccepted_at_ms">``."""
    mac = hmac.digest(secret.encode(), f"{key}\n{channel}\n{accepted_at_ms}".encode(), "sha256")
    return f"{accepted_at_ms}.{mac.hex()}"


async def register(pool: asyncpg.Pool, signer: Signer) -> None:
    """Publish the signing key (once: the first gateway with it sets its start of validity). A retired key
    must not sign again: ``ConfigError``."""
    row = await pool.fetchrow(
        "INSERT INTO receipt_keys (kid, public_key) VALUES ($1, $2) ON CONFLICT (kid) DO UPDATE SET kid = excluded.kid"
        " RETURNING not_after",
        signer.kid,
        signer.public_raw,
    )
    if row is not None and row["not_after"] is not None:
        raise ConfigError(
            "GATEWAY_RECEIPT_SIGNING_KEY",
            "",
            f"key {signer.kid} was retired at {iso_ms(row['not_after'])}: use a new one",
        )


async def retire(pool: asyncpg.Pool, kid: str) -> bool:
    """End a key's validity now; False when no key of that id is valid."""
    done: str = await pool.execute(
        "UPDATE receipt_keys SET not_after = now() WHERE kid = $1 AND not_after IS NULL", kid
    )
    return done.endswith(" 1")


async def published(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    return list(await pool.fetch("SELECT kid, public_key, not_before, not_after FROM receipt_keys ORDER BY not_before"))
