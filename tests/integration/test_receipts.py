"""Receipts on the real server: verifiable offline with the published key, and by the gateway in either format."""

from __future__ import annotations

import random
from typing import Any

import httpx
import orjson

from gateway import receipts
from loadtest import sample
from loadtest.client import SignedClient


def published(client: SignedClient) -> dict[str, bytes]:
    keys = client.keys().json()["keys"]
    assert keys and all(k["kty"] == "OKP" and k["crv"] == "Ed25519" and k["not_before"] for k in keys)
    return {k["kid"]: receipts.unb64url(k["x"]) for k in keys}


def test_a_receipt_verifies_offline_with_the_published_key(
    channel: SignedClient, draw: SignedClient, base_url: str
) -> None:
    rng = random.Random()
    results = channel.upload([sample.invoice(rng) for _ in range(5)]).json()["results"]
    keys = published(channel)
    assert published(channel) == published(draw)  # any role may read them
    assert httpx.get(f"{base_url}/v1/keys").status_code == 401  # signed, as every /v1 request (SPEC.md)
    for r in results:
        verdict = receipts.verify(r["receipt"], r["key"], "demo-channel", keys, "")
        assert verdict.valid and verdict.algorithm == "ed25519" and verdict.kid in keys
        assert not receipts.verify(r["receipt"], r["key"], "demo-channel-2", keys, "").valid


def verify(client: SignedClient, key: str, receipt: str) -> dict[str, Any]:
    body = orjson.dumps({"key": key, "receipt": receipt})
    resp = client.request("POST", "/v1/receipts/verify", body, {"Content-Type": "application/json"})
    assert resp.status_code == 200, resp.text
    answer: dict[str, Any] = resp.json()
    return answer


def test_the_gateway_verifies_both_formats_for_the_channel_they_name(
    channel: SignedClient, channel2: SignedClient, stack: Any
) -> None:
    first = channel.upload([sample.invoice(random.Random())]).json()["results"][0]
    mine = verify(channel, first["key"], first["receipt"])
    assert mine["valid"] and mine["algorithm"] == "ed25519" and mine["accepted_at"]
    assert not verify(channel2, first["key"], first["receipt"])["valid"]  # another channel's receipt
    old = receipts.legacy_receipt(stack.env["GATEWAY_RECEIPT_SECRET"], first["key"], "demo-channel", 1772366400123)
    legacy = verify(channel, first["key"], old)
    assert legacy == {"valid": True, "algorithm": "hmac-sha256", "kid": None, "accepted_at": "2026-03-01T12:00:00.123Z"}
    assert not verify(channel, first["key"], old[:-1] + ("0" if old[-1] != "0" else "1"))["valid"]
    junk = channel.request("POST", "/v1/receipts/verify", b'{"key": "x"}', {"Content-Type": "application/json"})
    assert junk.status_code == 400 and junk.json()["code"] == "malformed_body"
