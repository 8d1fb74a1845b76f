"""The outbox: a record of each change, written in the same PostgreSQL transaction as the change, for a relay to
deliver to its destination (workers/relay.py). One row per destination: the national monitoring platform now
(``NATIONAL``); a channel's webhook can be one more destination, with a relay loop of its own.

A record is ours, not a destination's: ``kind`` and a JSON body, mapped to the destination's wire format by its
adapter when it is sent (workers/national.py for the national platform). Kinds:

- ``invoice`` (subject: the invoice key): ``{"key", "channel", "events": [event, ...]}`` and, on the record of
  the transaction that committed the invoice, ``"invoice"``: its facts (``person`` as the keyed hash only,
  ``seller_tax_id``, ``amount_fen``, ``issue_date``, ``industry``, ``accepted_at``). An event is
  ``{"status", "at"}`` with ``"reason"`` or ``"batch_seq"`` where it has one; statuses: ``received`` (accepted
  by the gateway), ``verified``, ``ineligible``, ``reversed``, ``eligible`` (sealed into a feed batch);
- ``batch`` (subject ``batch:<seq>``): a sealed feed batch, ``{"seq", "sealed_at", "count", "prev_sha256",
  "sha256"}``;
- ``report`` (subject ``report:<day>``): a closed day's report (core/report.py);
- ``prize`` (subject: the winning invoice's key, so that it follows the invoice's own records): a movement of
  prize money (core/prizes.py), ``{"prize_id", "draw_id", "tier", "amount_fen", "key", "channel", "movement",
  "at"}`` with ``"cause"`` where it has one; movements: ``awarded``, ``withdrawn`` (reversed before payment),
  ``paid``, ``clawback`` (reversed after), ``expired``;
- ``draw`` (subject ``draw:<id>``): a draw's published result in brief (``{"draw_id", "kind", "window",
  "seed", "result_sha256", "winners", "prize_amount_fen", "published_at"}``; docs/draw.md).

Records name no person but by the keyed hash, and hold no name, ID number or location. A relay delivers the
records of one subject in the order of their ids: a later change's transaction can only start once the earlier
one committed (it needs to see the invoice), so its ids are larger.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, NamedTuple

import orjson

from core.rollup import Conn
from core.times import iso_ms

NATIONAL = "national"
# Watched by the metrics (gateway/ops.py), with "webhook:<channel>" of every channel that has a webhook (migration
# 080 writes their records): a new destination is named here too.
DESTINATIONS = (NATIONAL,)

ADD = """
INSERT INTO outbox (destination, subject, kind, record)
SELECT d, s, k, r::jsonb FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS o(d, s, k, r)
"""


class Record(NamedTuple):
    subject: str
    kind: str
    body: dict[str, Any]


def event(status: str, at: dt.datetime, reason: str | None = None, batch_seq: int | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {"status": status, "at": iso_ms(at)}
    if reason is not None:
        found["reason"] = reason
    if batch_seq is not None:
        found["batch_seq"] = batch_seq
    return found


def invoice(key: str, channel: str, events: list[dict[str, Any]], facts: dict[str, Any] | None = None) -> Record:
    body: dict[str, Any] = {"key": key, "channel": channel, "events": events}
    if facts is not None:
        body["invoice"] = facts
    return Record(key, "invoice", body)


def facts(
    *, person: str, seller_tax_id: str, amount_fen: int, issue_date: str, industry: str, accepted_at: dt.datetime
) -> dict[str, Any]:
    """What the platform learns of an invoice once: no name, ID number or location; the person as a keyed hash."""
    return {
        "person": person,
        "seller_tax_id": seller_tax_id,
        "amount_fen": amount_fen,
        "issue_date": issue_date,
        "industry": industry,
        "accepted_at": iso_ms(accepted_at),
    }


def batch(seq: int, sealed_at: dt.datetime, count: int, prev_sha256: str, sha256: str) -> Record:
    body = {"seq": seq, "sealed_at": iso_ms(sealed_at), "count": count, "prev_sha256": prev_sha256, "sha256": sha256}
    return Record(f"batch:{seq}", "batch", body)


def report(day: dt.date, body: dict[str, Any]) -> Record:
    return Record(f"report:{day.isoformat()}", "report", body)


def prize(movement: str, at: dt.datetime, cause: str | None, **prize: Any) -> Record:
    """A movement of prize money; ``prize``: its ``prize_id``, ``draw_id``, ``tier``, ``amount_fen``, ``key``,
    ``channel``."""
    body = {**prize, "movement": movement, "at": iso_ms(at)}
    if cause is not None:
        body["cause"] = cause
    return Record(prize["key"], "prize", body)


def draw(summary: dict[str, Any]) -> Record:
    """A draw's published result, in brief."""
    return Record(f"draw:{summary['draw_id']}", "draw", summary)


async def add(conn: Conn, records: Sequence[Record], destinations: Sequence[str] = (NATIONAL,)) -> None:
    """Write ``records`` for each destination, in order, in the caller's transaction."""
    rows = [(d, r.subject, r.kind, orjson.dumps(r.body).decode()) for r in records for d in destinations]
    if rows:
        await conn.execute(ADD, *(list(c) for c in zip(*rows, strict=True)))
