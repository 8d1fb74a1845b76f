"""Runs last (alphabetically): searches every log of the test run for secrets and personal data."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from loadtest.client import SignedClient

# An 18-character resident ID number: area, birth date (19xx/20xx), sequence, check character.
ID_NUMBER = re.compile(
    r"(?<![0-9])[0-9]{6}(?:19|20)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])[0-9]{3}[0-9X](?![0-9])"
)


def test_logs_hold_no_secret_no_name_no_id_number(stack: Any, channel: SignedClient) -> None:
    from deploy.devstack import DEV_CLIENTS

    forbidden = [secret for _, secret, _ in DEV_CLIENTS]
    forbidden += [stack.env["GATEWAY_RECEIPT_SECRET"], stack.env["GATEWAY_PERSON_SECRET"]]
    forbidden += ["张三", "李四", "11010519491231002X"]
    logs = sorted(Path(stack.logs).glob("*.log"))
    assert any(p.name == "gateway.log" for p in logs)
    for path in logs:
        text = path.read_text(errors="replace")
        for word in forbidden:
            assert word not in text, f"{word!r} in {path.name}"
        found = ID_NUMBER.search(text)
        assert found is None, f"something like an ID number in {path.name}: {found.group(0) if found else ''}"


def test_access_log_has_one_json_line_per_request_with_its_request_id(stack: Any, channel: SignedClient) -> None:
    import orjson

    resp = channel.status("26349999999999999999")
    request_id = resp.headers["x-request-id"]
    log = (Path(stack.logs) / "gateway.log").read_text(errors="replace")
    lines = [orjson.loads(line) for line in log.splitlines() if line.startswith("{") and request_id in line]
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
