"""The logs hold no secret, name or ID number, and one JSON access line per request. (The end of the test session
searches every log of the run again: tests/conftest.py.)"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import orjson

from deploy.devstack import DEV_CLIENTS
from loadtest import sample
from loadtest.client import SignedClient
from tests.privacy import leaks


def stack_secrets(stack: Any) -> list[str]:
    return [secret for _, secret, _ in DEV_CLIENTS] + [
        stack.env["GATEWAY_RECEIPT_SECRET"],
        stack.env["GATEWAY_PERSON_SECRET"],
    ]


def test_logs_hold_no_secret_no_name_no_id_number(stack: Any, channel: SignedClient, drain: Any) -> None:
    rng = random.Random()
    person = {"id": "u-logs", "device_id": "d-logs", "real_name": "张三", "id_number": "11010519491231002X"}
    mine = [sample.invoice(rng, user=person), sample.invoice(rng, buyer_name="李四", user=person)]
    assert channel.upload(mine).status_code == 202  # accepted, and rejected: buyer_name_mismatch
    forged = channel.request("POST", "/v1/invoices", b'{"invoices": []}', {"X-Signature": "0" * 64})
    assert forged.status_code == 401
    drain()
    logs = sorted(Path(stack.logs).glob("*.log"))
    assert any(p.name == "gateway.log" for p in logs)
    assert leaks(logs, stack_secrets(stack)) == []


def test_the_log_search_finds_what_it_looks_for(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text('{"detail": "buyer 李四, id 11010519491231002X, key dev-stack-receipt-secret, 31.8206,117.2272"}\n')
    assert len(leaks([log], ["dev-stack-receipt-secret"])) == 6


def test_access_log_has_one_json_line_per_request_with_its_request_id(
    stack: Any, channel: SignedClient, wait_for: Any
) -> None:
    resp = channel.status("26349999999999999999")
    request_id = resp.headers["x-request-id"]

    def lines_of_the_request() -> list[Any]:
        log = (Path(stack.logs) / "gateway.log").read_text(errors="replace")
        return [orjson.loads(line) for line in log.splitlines() if line.startswith("{") and request_id in line]

    wait_for(lambda: lines_of_the_request(), 5)  # the line is written once the answer has gone
    lines = lines_of_the_request()
    assert lines == [
        {
            "request_id": request_id,
            "method": "GET",
            "route": "/v1/invoices/{key}",
            "status": 404,
            "ms": lines[0]["ms"],
            "client": "demo-channel",
        }
    ]
