"""Request handling on the real server: size limit, shapes, media types, status visibility."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator

import msgspec
import orjson

from channel_client.signing import sign_headers
from loadtest import sample
from loadtest.client import SignedClient

ONE_MIB = 1024 * 1024


def test_declared_body_over_the_limit_is_413_before_it_is_read(channel: SignedClient) -> None:
    big = b'{"invoices": [' + b" " * ONE_MIB + b"]}"
    resp = channel.request("POST", "/v1/invoices", big, {"Content-Type": "application/json"})
    assert resp.status_code == 413 and resp.json()["code"] == "body_too_large"


def test_streamed_body_over_the_limit_is_413(channel: SignedClient) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(40):
            yield b" " * 65536  # 2.5 MiB, chunked: no Content-Length to refuse early

    headers = sign_headers("demo-channel", "demo-channel-secret", "POST", "/v1/invoices", b"x", 0, "n" * 16)
    resp = channel.http.post("/v1/invoices", content=chunks(), headers=headers)
    # The timestamp is stale, but the size is checked while reading, before the signature can be: the
    # header checks come first and answer 401 without reading the body at all.
    assert resp.status_code == 401
    headers = sign_headers(
        "demo-channel", "demo-channel-secret", "POST", "/v1/invoices", b"x", int(time.time()), "m" * 16
    )
    resp = channel.http.post("/v1/invoices", content=chunks(), headers=headers)
    assert resp.status_code == 413 and resp.json()["code"] == "body_too_large"


def test_malformed_body_is_400_problem(channel: SignedClient) -> None:
    resp = channel.request("POST", "/v1/invoices", b"{not json", {"Content-Type": "application/json"})
    assert resp.status_code == 400 and resp.json()["code"] == "malformed_body"
    resp = channel.request("POST", "/v1/invoices", b'{"invoices": []}', {"Content-Type": "application/json"})
    assert resp.status_code == 400 and resp.json()["code"] == "invoice_count"


def test_too_many_invoices_is_400(channel: SignedClient) -> None:
    rng = random.Random()
    resp = channel.upload([sample.invoice(rng) for _ in range(501)])
    assert resp.status_code == 400 and resp.json()["code"] == "invoice_count"


def test_unsupported_media_type_is_415(channel: SignedClient) -> None:
    resp = channel.request("POST", "/v1/invoices", b"<invoices/>", {"Content-Type": "application/xml"})
    assert resp.status_code == 415


def test_msgpack_upload_is_welcome(channel: SignedClient) -> None:
    payload = msgspec.msgpack.encode({"invoices": [sample.invoice(random.Random())]})
    resp = channel.request("POST", "/v1/invoices", payload, {"Content-Type": "application/msgpack"})
    assert resp.status_code == 202 and resp.json()["results"][0]["status"] == "accepted"


def test_misshapen_invoice_is_rejected_alone(channel: SignedClient) -> None:
    rng = random.Random()
    body = orjson.dumps({"invoices": [sample.invoice(rng), {"number": 1}, sample.invoice(rng)]})
    results = channel.request("POST", "/v1/invoices", body, {"Content-Type": "application/json"}).json()["results"]
    assert [r["status"] for r in results] == ["accepted", "rejected", "accepted"]
    assert results[1]["reason"] == "invalid_shape"


def test_another_channels_invoice_is_404(channel: SignedClient, channel2: SignedClient) -> None:
    key = channel.upload([sample.invoice(random.Random())]).json()["results"][0]["key"]
    assert channel.status(key).status_code == 200
    resp = channel2.status(key)
    assert resp.status_code == 404 and resp.json()["code"] == "unknown_invoice"
    assert channel.status("26349999999999999999").status_code == 404
    assert channel.status("not-a-key").status_code == 404


def test_request_id_is_in_body_and_header(channel: SignedClient) -> None:
    resp = channel.upload([sample.invoice(random.Random())])
    assert resp.headers["x-request-id"] == resp.json()["request_id"]


def test_unknown_path_and_method_are_problems_with_the_request_id(channel: SignedClient) -> None:
    missing = channel.request("GET", "/v1/nothing-here")
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["code"] == "not_found"
    assert missing.json()["request_id"] == missing.headers["x-request-id"]
    wrong = channel.request("PUT", "/v1/invoices")
    assert wrong.status_code == 405 and wrong.json()["code"] == "method_not_allowed"
    assert "POST" in wrong.headers["allow"]


def test_every_answer_to_a_channel_carries_its_request_id_and_ratelimit_headers(channel: SignedClient) -> None:
    key = channel.upload([sample.invoice(random.Random())]).json()["results"][0]["key"]
    answers = {
        "upload": channel.upload([sample.invoice(random.Random())]),
        "status": channel.status(key),
        "unknown status": channel.status("26349999999999999998"),
        "events": channel.request("GET", "/v1/events?limit=1"),
        "listing": channel.request("GET", "/v1/invoices?user=nobody"),
        "bad parameter": channel.request("GET", "/v1/events?limit=0"),
    }
    for name, resp in answers.items():
        assert resp.headers["x-request-id"], name
        assert resp.headers["ratelimit-policy"].startswith('"requests";q='), name
        assert resp.headers["ratelimit"].startswith('"requests";r='), name
    assert answers["unknown status"].status_code == 404 and answers["bad parameter"].status_code == 400
    unsigned = channel.http.get("/v1/events")
    assert unsigned.status_code == 401 and "ratelimit" not in unsigned.headers  # who is calling is not known
