"""The feed's canonical entry text and SHA-256 hash chain (SPEC.md, ``GET /v1/feed``). Pure functions."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import orjson

GENESIS = "0" * 64


def entry_text(entry: dict[str, Any]) -> str:
    """An entry's JSON with keys sorted, no spaces, non-ASCII kept as is.

    Equal to ``json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`` for the
    strings and integers an entry holds (no floats, by design: amounts are in fen).
    """
    return orjson.dumps(entry, option=orjson.OPT_SORT_KEYS).decode()


def batch_sha256(prev_sha256: str, entries: Sequence[str]) -> str:
    """SHA-256 of ``prev_sha256 + "\\n" + entry_1 + "\\n" + ... + entry_n`` as UTF-8, lowercase hex."""
    return hashlib.sha256("\n".join((prev_sha256, *entries)).encode()).hexdigest()
