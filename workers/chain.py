"""The feed's canonical entry text and SHA-256 hash chain (SPEC.md, ``GET /v1/feed``). Pure functions."""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from collections.abc import Sequence
from typing import Any

import orjson

GENESIS = "0" * 64


def iso_ms(at: dt.datetime) -> str:
    """A UTC time as the feed and the API write it: ``2026-03-01T20:00:01.250Z``."""
    return at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def iso_from_ms(ms: int) -> str:
    """The same, from Unix milliseconds (exact: no float on the way)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def feed_entry(
    kind: str,
    *,
    key: str,
    person: str,
    channel: str,
    amount_fen: int,
    issue_date: str,
    seller_tax_id: str,
    category: str,
    accepted_at: str,
) -> dict[str, Any]:
    """An ``add`` or ``void`` entry of the draw feed: no name, no ID number; the person is a keyed hash."""
    return {
        "key": key,
        "kind": kind,
        "person": person,
        "channel": channel,
        "amount_fen": amount_fen,
        "issue_date": issue_date,
        "seller_tax_id": seller_tax_id,
        "category": category,
        "accepted_at": accepted_at,
    }


def entry_from_row(kind: str, row: Any) -> dict[str, Any]:
    """The entry of an invoice as a row of the ``invoices`` table holds it (a mapping by column)."""
    return feed_entry(
        kind,
        key=row["key"],
        person=row["person"],
        channel=row["channel"],
        amount_fen=row["amount_fen"],
        issue_date=row["issue_date"].isoformat(),
        seller_tax_id=row["seller_tax_id"],
        category=row["category"],
        accepted_at=iso_ms(row["accepted_at"]),
    )


def entry_text(entry: dict[str, Any]) -> str:
    """An entry's JSON with keys sorted, no spaces, non-ASCII kept as is.

    Equal to ``json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`` for the
    strings and integers an entry holds (no floats, by design: amounts are in fen).
    """
    return orjson.dumps(entry, option=orjson.OPT_SORT_KEYS).decode()


def batch_sha256(prev_sha256: str, entries: Sequence[str]) -> str:
    """SHA-256 of ``prev_sha256 + "\\n" + entry_1 + "\\n" + ... + entry_n`` as UTF-8, lowercase hex."""
    return hashlib.sha256("\n".join((prev_sha256, *entries)).encode()).hexdigest()
