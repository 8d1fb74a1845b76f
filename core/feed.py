"""The feed entry and its hash chain (SPEC.md, ``GET /v1/feed``): this module owns the entry's shape, its text,
the chain over batches, and ``append``, which reviews and reversals write entries with. The sink writes its
entries inside its upsert instead (workers/sink.py: one statement fewer per batch, measured there), with the text
made here.

An entry is ``add`` (an eligible invoice) or ``void`` (a fed invoice reversed since). It names no person but by
a keyed hash and holds no name or ID number. Its text is its JSON with keys sorted by code point, no spaces,
non-ASCII kept as is; a batch's hash is SHA-256 of ``prev_sha256 + "\\n" + entry_1 + "\\n" + ... + entry_n``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import asyncpg
import orjson
from asyncpg.pool import PoolConnectionProxy

from core.contract import Queued
from core.times import iso_from_ms, iso_ms

GENESIS = "0" * 64
Kind = Literal["add", "void"]

APPEND = """
INSERT INTO feed_entries (key, kind, body, ready_at, reverify_at)
SELECT k, $3, b, r, CASE WHEN $5 THEN r END
FROM unnest($1::text[], $2::text[]) AS e(k, b), LATERAL (SELECT now() + make_interval(secs => $4) AS r) AS ready
ON CONFLICT DO NOTHING
"""


def entry(
    kind: Kind,
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
    """An entry of the draw feed, every field named."""
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


def of_queued(kind: Kind, q: Queued) -> dict[str, Any]:
    """The entry of an invoice as the stream carried it (the sink, which writes it in its upsert)."""
    return entry(
        kind,
        key=q.key,
        person=q.person,
        channel=q.channel,
        amount_fen=q.amount_fen,
        issue_date=q.issue_date,
        seller_tax_id=q.seller_tax_id,
        category=q.category,
        accepted_at=iso_from_ms(q.accepted_at_ms),
    )


def of_row(kind: Kind, row: Any) -> dict[str, Any]:
    """The entry of an invoice as a row of the ``invoices`` table holds it (reviews, reversals)."""
    return entry(
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


def text(e: Mapping[str, Any]) -> str:
    """An entry's JSON with keys sorted, no spaces, non-ASCII kept as is.

    Equal to ``json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`` for the
    strings and integers an entry holds (no floats, by design: amounts are in fen).
    """
    return orjson.dumps(e, option=orjson.OPT_SORT_KEYS).decode()


def batch_sha256(prev_sha256: str, entries: Sequence[str]) -> str:
    """SHA-256 of ``prev_sha256 + "\\n" + entry_1 + "\\n" + ... + entry_n`` as UTF-8, lowercase hex."""
    return hashlib.sha256("\n".join((prev_sha256, *entries)).encode()).hexdigest()


async def append(
    conn: asyncpg.Connection | PoolConnectionProxy,
    kind: Kind,
    entries: Sequence[Mapping[str, Any]],
    ready_in_s: float = 0.0,
    reverify: bool = False,
) -> None:
    """Write entries waiting to be sealed, in the caller's transaction; an ``add`` for a key already added (or a
    ``void`` already voided) is left out. ``ready_in_s``: the campaign's payout hold before it may be sealed;
    ``reverify``: the tax service is asked again when the hold ends, before it is sealed (workers/reverify.py)."""
    if entries:
        keys, texts = [e["key"] for e in entries], [text(e) for e in entries]
        await conn.execute(APPEND, keys, texts, kind, float(ready_in_s), reverify)
