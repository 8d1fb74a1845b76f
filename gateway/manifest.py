"""Signed manifests of archives and hand-over packages (docs/archives.md): ``manifest.json`` (UTF-8, keys
sorted), ``manifest.sig`` (base64 of the Ed25519 signature of manifest.json's exact bytes) and
``archive-key.pub`` (the public key, PEM), so that an auditor checks them with the public key and no secret
(gateway/audit_kit.py).

The archive signing key is its own (``GATEWAY_ARCHIVE_SIGNING_KEY_FILE``), not the receipts': it is read the
same way (a PEM file, or base64 of its 32 bytes) and named the same way (the first 16 hex digits of SHA-256 of
the raw public key).
"""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
from pathlib import Path
from typing import Any

import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from core.settings import Archive, ConfigError
from gateway import audit_kit, receipts

ROOT = Path(__file__).resolve().parent.parent
MANIFEST, SIGNATURE, PUBLIC_KEY = audit_kit.MANIFEST, audit_kit.SIGNATURE, audit_kit.PUBLIC_KEY


def load_key(settings: Archive) -> Ed25519PrivateKey:
    """The archive signing key, or ``ConfigError`` saying how to make one."""
    name = "GATEWAY_ARCHIVE_SIGNING_KEY_FILE"
    if not settings.signing_key_file:
        raise ConfigError(name, "", "required to sign archives: `gateway archive new-key > FILE` makes a key")
    try:
        data = Path(settings.signing_key_file).read_bytes()
    except OSError as exc:
        raise ConfigError(name, "", f"cannot read it: {exc.strerror}") from exc
    return receipts.private_key(name, data)


def public_pem(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def key_id(key: Ed25519PrivateKey) -> str:
    return receipts.key_id(key.public_key().public_bytes_raw())


def text(manifest: dict[str, Any]) -> bytes:
    return orjson.dumps(manifest, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2) + b"\n"


def write_signed(folder: Path, manifest: dict[str, Any], key: Ed25519PrivateKey) -> str:
    """Write the manifest, its signature and the public key into ``folder``; returns the manifest's SHA-256."""
    body = text({**manifest, "key_id": key_id(key)})
    (folder / MANIFEST).write_bytes(body)
    (folder / SIGNATURE).write_text(base64.b64encode(key.sign(body)).decode() + "\n")
    (folder / PUBLIC_KEY).write_bytes(public_pem(key))
    return hashlib.sha256(body).hexdigest()


def code_version() -> str:
    """The git commit of the code that made an archive (``-dirty`` when the checkout has changes)."""
    try:
        done = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=40"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown (no git)"
    return done.stdout.strip() if done.returncode == 0 else "unknown (not a git checkout)"


def operator() -> str:
    """Who makes an archive, when not named: the account and the host."""
    return f"{os.environ.get('USER') or os.environ.get('LOGNAME') or 'unknown'}@{os.uname().nodename}"
