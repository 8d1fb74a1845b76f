"""The draw service's feed: cursor, limit, long poll."""

from __future__ import annotations

import random
import time
from typing import Any

from loadtest import sample
from loadtest.client import SignedClient
from tests.integration.helpers import long_poll_during


def last_seq(draw: SignedClient) -> int:
    seq = 0
    while batches := draw.feed(after=seq, limit=100).json()["batches"]:
        seq = batches[-1]["seq"]
    return seq


def test_cursor_and_limit_page_through_batches(channel: SignedClient, draw: SignedClient, drain: Any) -> None:
    rng = random.Random()
    for _ in range(3):
        channel.upload([sample.invoice(rng)])
        drain()
    top = last_seq(draw)
    assert top >= 3
    page = draw.feed(after=top - 3, limit=2).json()["batches"]
    assert [b["seq"] for b in page] == [top - 2, top - 1]
    assert draw.feed(after=top, limit=2).json()["batches"] == []


def test_long_poll_waits_then_answers_empty(draw: SignedClient, drain: Any) -> None:
    drain()
    top = last_seq(draw)
    started = time.monotonic()
    assert draw.feed(after=top, wait=1.5).json()["batches"] == []
    assert time.monotonic() - started >= 1.4


def test_long_poll_wakes_when_a_batch_is_sealed(channel: SignedClient, draw: SignedClient, drain: Any) -> None:
    drain()
    top = last_seq(draw)

    def upload_and_drain() -> str:
        key: str = channel.upload([sample.invoice(random.Random())]).json()["results"][0]["key"]
        drain()
        return key

    got, key, took_s = long_poll_during(lambda: draw.feed(after=top, wait=20).json(), upload_and_drain)
    assert got["batches"] and got["batches"][0]["seq"] == top + 1
    assert key in {e["key"] for e in got["batches"][0]["entries"]}
    assert took_s < 10


def test_bad_feed_parameters_are_400(draw: SignedClient) -> None:
    for query in ("after=-1", "limit=0", "limit=1000", "wait=31", "wait=abc"):
        resp = draw.request("GET", f"/v1/feed?{query}")
        assert resp.status_code == 400, query
        assert resp.json()["code"] == "bad_parameter"


def test_unicode_digits_in_feed_parameters_are_400(draw: SignedClient) -> None:
    resp = draw.request("GET", "/v1/feed?after=%C2%B2")
    assert resp.status_code == 400 and resp.json()["code"] == "bad_parameter"
