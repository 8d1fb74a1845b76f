"""Each authentication failure of SPEC.md, on the real server."""

from __future__ import annotations

import random
import secrets
import time
from typing import Any

import orjson
import pytest
import redis

from channel_client.signing import sign_headers
from core import keys
from core.settings import Settings
from loadtest import sample
from loadtest.client import SignedClient


def body() -> bytes:
    return orjson.dumps({"invoices": [sample.invoice(random.Random())]})


def assert_problem(resp: object, status: int, code: str) -> None:
    assert resp.status_code == status, resp.text  # type: ignore[attr-defined]
    assert resp.headers["content-type"] == "application/problem+json"  # type: ignore[attr-defined]
    problem = resp.json()  # type: ignore[attr-defined]
    assert problem["code"] == code and problem["status"] == status and problem["title"] and problem["detail"]


@pytest.mark.parametrize("header", ["X-Client-Id", "X-Timestamp", "X-Nonce", "X-Signature"])
def test_missing_header_is_401(channel: SignedClient, header: str) -> None:
    payload = body()
    headers = sign_headers(
        "demo-channel", "demo-channel-secret", "POST", "/v1/invoices", payload, int(time.time()), secrets.token_hex(16)
    )
    del headers[header]
    resp = channel.http.post("/v1/invoices", content=payload, headers=headers)
    assert_problem(resp, 401, "missing_auth_header")


def test_unknown_client_is_401(base_url: str) -> None:
    with SignedClient(base_url, "nobody", "demo-channel-secret") as stranger:
        assert_problem(stranger.upload([sample.invoice(random.Random())]), 401, "unknown_client")


def test_wrong_secret_is_401(base_url: str) -> None:
    with SignedClient(base_url, "demo-channel", "not-the-secret") as forger:
        assert_problem(forger.upload([sample.invoice(random.Random())]), 401, "bad_signature")


def test_body_changed_after_signing_is_401(channel: SignedClient) -> None:
    headers = sign_headers(
        "demo-channel", "demo-channel-secret", "POST", "/v1/invoices", body(), int(time.time()), secrets.token_hex(16)
    )
    assert_problem(channel.http.post("/v1/invoices", content=body(), headers=headers), 401, "bad_signature")


@pytest.mark.parametrize("offset_s", [-301, 301])
def test_timestamp_outside_300_s_is_401(channel: SignedClient, offset_s: int) -> None:
    resp = channel.request("POST", "/v1/invoices", body(), timestamp=int(time.time()) + offset_s)
    assert_problem(resp, 401, "stale_timestamp")


def test_timestamp_inside_the_window_is_accepted(channel: SignedClient) -> None:
    resp = channel.request("POST", "/v1/invoices", body(), timestamp=int(time.time()) - 250)
    assert resp.status_code == 202


def test_replayed_nonce_is_401(channel: SignedClient) -> None:
    nonce = secrets.token_hex(16)
    payload = body()
    first = channel.request("POST", "/v1/invoices", payload, nonce=nonce)
    replay = channel.request("POST", "/v1/invoices", payload, nonce=nonce)
    assert first.status_code == 202
    assert_problem(replay, 401, "replayed_nonce")


def test_nonce_of_bad_shape_is_401(channel: SignedClient) -> None:
    assert_problem(channel.request("POST", "/v1/invoices", body(), nonce="short"), 401, "bad_nonce")


def test_forged_request_does_not_spend_the_nonce(base_url: str, channel: SignedClient) -> None:
    nonce = secrets.token_hex(16)
    with SignedClient(base_url, "demo-channel", "not-the-secret") as forger:
        assert forger.request("POST", "/v1/invoices", body(), nonce=nonce).status_code == 401
    assert channel.request("POST", "/v1/invoices", body(), nonce=nonce).status_code == 202


def test_wrong_role_is_403(channel: SignedClient, draw: SignedClient) -> None:
    assert_problem(channel.feed(), 403, "wrong_role")
    assert_problem(draw.upload([sample.invoice(random.Random())]), 403, "wrong_role")
    assert_problem(draw.status("26341000000000000001"), 403, "wrong_role")


def test_signature_covers_the_query_string(draw: SignedClient) -> None:
    headers = sign_headers(
        "demo-draw", "demo-draw-secret", "GET", "/v1/feed?after=0", b"", int(time.time()), secrets.token_hex(16)
    )
    assert_problem(draw.http.get("/v1/feed?after=1", headers=headers), 401, "bad_signature")


@pytest.mark.parametrize(
    ("header", "value", "code"),
    [
        ("X-Timestamp", "\xb2", "stale_timestamp"),  # a Unicode digit
        ("X-Timestamp", "9" * 5000, "stale_timestamp"),
        ("X-Signature", "\xe9" * 64, "bad_signature"),
        ("X-Signature", "A" * 64, "bad_signature"),
    ],
)
def test_odd_header_values_are_401_never_500(channel: SignedClient, header: str, value: str, code: str) -> None:
    payload = body()
    headers = sign_headers(
        "demo-channel", "demo-channel-secret", "POST", "/v1/invoices", payload, int(time.time()), secrets.token_hex(16)
    )
    headers[header] = value
    raw = [(k.encode(), v.encode("latin-1")) for k, v in headers.items()]
    assert_problem(channel.http.post("/v1/invoices", content=payload, headers=raw), 401, code)


def test_an_upload_spends_its_nonce_in_the_same_keyspace_as_every_other_endpoint(channel: SignedClient) -> None:
    """Uploads spend the nonce inside their rate-limit call; the other endpoints on their own. One nonce, one use."""
    nonce = secrets.token_hex(16)
    assert channel.request("GET", "/v1/invoices/26341000000000000001", b"", nonce=nonce).status_code == 404
    assert_problem(channel.request("POST", "/v1/invoices", body(), nonce=nonce), 401, "replayed_nonce")
    other = secrets.token_hex(16)
    assert channel.request("POST", "/v1/invoices", body(), nonce=other).status_code == 202
    assert_problem(channel.request("GET", "/v1/invoices/26341000000000000001", b"", nonce=other), 401, "replayed_nonce")


def test_a_replayed_upload_consumes_no_rate_limit(base_url: str, settings: Settings, wait_for: Any) -> None:
    """tiny-channel may send a burst of 2 requests (0.5/s): a replay refused in the shared call spends none."""
    payload = body()
    nonce = secrets.token_hex(16)
    state = redis.Redis.from_url(settings.stores.redis_url)
    with SignedClient(base_url, "tiny-channel", "tiny-channel-secret") as tiny:
        # Its burst is whole again, whatever other tests spent: the state expires when its arrival time passes.
        wait_for(lambda: not state.exists(keys.channel_rates("tiny-channel")), 10)
        assert tiny.request("POST", "/v1/invoices", payload, nonce=nonce).status_code == 202
        for _ in range(3):
            assert_problem(tiny.request("POST", "/v1/invoices", payload, nonce=nonce), 401, "replayed_nonce")
        assert tiny.request("POST", "/v1/invoices", body()).status_code == 202
