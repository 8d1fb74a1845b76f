"""The national platform's wire format: our outbox records mapped to its records, each with a stable
idempotency id; its answers read back; the relay's verdict per outbox row."""

from __future__ import annotations

import asyncio

import msgspec
import orjson
import pytest

from core.settings import Export
from workers import national
from workers.national import Result, Row
from workers.relay import Relay, _seconds, _verdicts

FACTS = {
    "person": "a" * 64,
    "seller_tax_id": "91340104MA1W0556X9",
    "amount_fen": 12850,
    "issue_date": "2026-03-01",
    "industry": "catering",
    "accepted_at": "2026-03-01T12:00:00.000Z",
}


def test_an_invoice_row_becomes_a_record_per_event_with_stable_ids() -> None:
    events = [
        {"status": "received", "at": "2026-03-01T12:00:00.000Z"},
        {"status": "verified", "at": "2026-03-01T12:00:01.000Z"},
        {"status": "ineligible", "at": "2026-03-01T12:00:01.000Z", "reason": "amount_mismatch"},
    ]
    row = Row(
        17,
        "26341000000000000123",
        "invoice",
        {"key": "26341000000000000123", "channel": "c", "events": events, "invoice": FACTS},
    )
    made = national.records(row, "hefei-2026")
    assert [r["id"] for r in made] == ["hefei-2026:17:0", "hefei-2026:17:1", "hefei-2026:17:2"]
    assert [r["type"] for r in made] == ["invoice.received", "invoice.verified", "invoice.ineligible"]
    assert made[0]["invoice"] == {k: v for k, v in FACTS.items() if k != "accepted_at"}
    assert made[2]["reason"] == "amount_mismatch" and "invoice" not in made[1]
    assert national.records(row, "hefei-2026") == made  # sent again, the same ids


def test_batches_and_reports_are_one_record_each() -> None:
    batch = {"seq": 3, "sealed_at": "2026-03-01T12:00:02.000Z", "count": 2, "prev_sha256": "0" * 64, "sha256": "f" * 64}
    (fed,) = national.records(Row(5, "batch:3", "batch", batch), "c")
    assert fed["type"] == "batch.fed" and fed["batch"] == batch and fed["at"] == batch["sealed_at"]
    body = {"closed_at": "2026-03-02T18:00:00.000Z", "days": [{"date": "2026-03-01", "received": 4}]}
    (daily,) = national.records(Row(6, "report:2026-03-01", "report", body), "c")
    assert (daily["type"], daily["date"], daily["report"]["received"]) == ("report.daily", "2026-03-01", 4)
    with pytest.raises(ValueError):
        national.records(Row(7, "x", "mystery", {}), "c")


def test_the_request_body_names_the_format_and_an_answer_is_read_back() -> None:
    body = orjson.loads(national.request_body("gw", "hefei-2026", [{"id": "a"}]))
    assert body == {"format": national.FORMAT, "sender": "gw", "campaign": "hefei-2026", "records": [{"id": "a"}]}
    answer = b'{"results": [{"id": "a", "status": "accepted"}, {"id": "b", "status": "invalid", "reason": "bad"}]}'
    assert national.results(answer)["b"] == Result("b", "invalid", "bad")
    with pytest.raises(msgspec.DecodeError):
        national.results(b'{"results": [{"id": "a", "status": "maybe"}]}')


def test_a_row_is_delivered_when_each_of_its_records_is_held_else_parked_with_the_reason() -> None:
    verdicts = {
        "c:1:0": Result("c:1:0", "accepted"),
        "c:1:1": Result("c:1:1", "duplicate"),
        "c:2:0": Result("c:2:0", "accepted"),
        "c:2:1": Result("c:2:1", "invalid", "bad_amount"),
    }
    outcome = _verdicts({1: ["c:1:0", "c:1:1"], 2: ["c:2:0", "c:2:1"]}, verdicts)
    assert outcome.delivered == [1] and outcome.parked == {2: "invalid: bad_amount (record c:2:1)"}
    with pytest.raises(KeyError):  # a record the answer leaves out: the request failed
        _verdicts({3: ["c:3:0"]}, verdicts)
    assert (_seconds("7"), _seconds(None), _seconds("Wed, 21 Oct 2015 07:28:00 GMT")) == (7.0, 0.0, 0.0)


def test_a_row_the_adapter_cannot_map_is_parked_and_nothing_is_sent() -> None:
    relay = Relay(None, None, Export(secret="s" * 16), "c")  # type: ignore[arg-type]  # no pool or session is used
    outcome = asyncio.run(relay._send([Row(1, "k", "mystery", {})]))
    assert outcome.parked == {1: "the adapter cannot map it: ValueError: outbox row 1: unknown kind 'mystery'"}
    assert not outcome.failed and not outcome.delivered and not relay.breaker.trying
