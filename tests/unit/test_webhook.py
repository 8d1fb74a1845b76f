"""The webhook's wire format and what the relay signs (pure)."""

from __future__ import annotations

import orjson
import pytest

from workers import webhook
from workers.national import Result, Row
from workers.relay import _path_and_query


def test_a_webhook_request_carries_the_channels_events_each_with_its_cursor_as_id() -> None:
    hook = webhook.Webhook("demo-channel")
    event = {"cursor": "812-40", "key": "26341000000000000123", "status": "eligible", "at": "t", "batch_seq": 7}
    made = hook.records(Row(1, event["key"], "event", event), "hefei-2026")
    assert made == [{"id": "812-40", **event}]
    body = orjson.loads(hook.request_body("prize-gateway", "hefei-2026", made))
    assert body == {"channel": "demo-channel", "campaign": "hefei-2026", "events": made}
    assert hook.results(b"", ["812-40"]) == {"812-40": Result("812-40", "accepted")}
    assert webhook.destination("demo-channel") == "webhook:demo-channel"


def test_only_events_go_to_a_webhook() -> None:
    with pytest.raises(ValueError, match="events"):
        webhook.Webhook("c").records(Row(1, "batch:1", "batch", {}), "x")


@pytest.mark.parametrize(
    ("url", "signed"),
    [
        ("https://ch.example/hooks/prize?src=gw&x=1", "/hooks/prize?src=gw&x=1"),
        ("http://127.0.0.1:8095/v1/records", "/v1/records"),
        ("https://ch.example", "/"),
    ],
)
def test_the_relay_signs_the_path_and_query_the_destination_receives(url: str, signed: str) -> None:
    assert _path_and_query(url) == signed
