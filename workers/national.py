"""The national monitoring platform's wire format, version 2 (docs/national-export.md): our outbox records
(core/outbox.py) mapped to the platform's records, and its answers read back. The platform's real interface is
not public: a city whose platform speaks another format gets one more module like this one (the same three
functions), and the relay (workers/relay.py) is handed it.

A request: ``POST /v1/records`` with ``{"format", "sender", "campaign", "records": [...]}``; each record has an
``id`` (the idempotency id: the campaign, the outbox row and the record's place in it) and a ``type``. The
answer: ``{"results": [{"id", "status": "accepted" | "duplicate" | "invalid", "reason"}]}``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import msgspec
import orjson

# Version 2 added the draws and the prize money (prize.* and draw.published records); version 1's records are
# unchanged in it.
FORMAT = "prize-invoice-monitoring/2"
PATH = "/v1/records"
STATUSES = ("accepted", "duplicate", "invalid")


class Row(NamedTuple):
    """An outbox row as the relay reads it."""

    id: int
    subject: str
    kind: str
    record: dict[str, Any]


class Result(msgspec.Struct, frozen=True):
    id: str
    status: str
    reason: str = ""


class Answer(msgspec.Struct, frozen=True):
    results: list[Result]


def records(row: Row, campaign: str) -> list[dict[str, Any]]:
    """The platform's records of one outbox row, each with its idempotency id."""
    body = row.record
    if row.kind == "invoice":
        found = [_event(body, e) for e in body["events"]]
    elif row.kind == "batch":
        found = [{"type": "batch.fed", "at": body["sealed_at"], "batch": body}]
    elif row.kind == "report":
        day = body["days"][0]
        found = [{"type": "report.daily", "at": body["closed_at"], "date": day["date"], "report": day}]
    elif row.kind == "prize":
        prize = {k: v for k, v in body.items() if k not in ("movement", "at")}
        found = [{"type": f"prize.{body['movement']}", "at": body["at"], "prize": prize}]
    elif row.kind == "draw":
        found = [{"type": "draw.published", "at": body["published_at"], "draw": body}]
    else:
        raise ValueError(f"outbox row {row.id}: unknown kind {row.kind!r}")
    return [{"id": f"{campaign}:{row.id}:{n}", **r} for n, r in enumerate(found)]


def _event(body: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
    status = event["status"]
    found: dict[str, Any] = {"type": f"invoice.{status}", "at": event["at"], "key": body["key"]}
    found["channel"] = body["channel"]
    if status == "received":
        facts = body["invoice"]
        found["invoice"] = {k: facts[k] for k in ("person", "seller_tax_id", "amount_fen", "issue_date", "industry")}
    for name in ("reason", "batch_seq"):
        if name in event:
            found[name] = event[name]
    return found


def request_body(sender: str, campaign: str, batch: Sequence[dict[str, Any]]) -> bytes:
    return orjson.dumps({"format": FORMAT, "sender": sender, "campaign": campaign, "records": list(batch)})


def results(answer: bytes, sent: Sequence[str] = ()) -> dict[str, Result]:
    """The platform's verdict on each record, by id (``sent``: the ids of the request, which the answer names
    itself). Raises ``msgspec.DecodeError`` on an answer of another shape (the relay treats it as a failed
    request)."""
    found = msgspec.json.decode(answer, type=Answer).results
    if any(r.status not in STATUSES for r in found):
        raise msgspec.DecodeError("a result's status is not one of " + ", ".join(STATUSES))
    return {r.id: r for r in found}
