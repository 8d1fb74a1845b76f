"""Hostile clients (docs/security.md): each gets a quick, clear answer or a closed connection, never a 5xx, and
none takes what an honest channel needs. Raw sockets against a gateway with short deadlines started here, and
the session's own gateway for what needs no special settings."""

from __future__ import annotations

import random
import re
import secrets
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
import redis

from channel_client.signing import sign_headers
from core.settings import Settings
from loadtest import sample
from loadtest.client import SignedClient

TIGHT = {
    "GATEWAY_HEADER_TIMEOUT_S": "1",
    "GATEWAY_BODY_TIMEOUT_S": "1.5",
    "GATEWAY_MAX_CONNECTIONS": "64",
    "GATEWAY_MAX_IN_FLIGHT": "4",
    "GATEWAY_BUSY_SHARE": "1",  # the hard cap alone: what slow bodies would take is the slots themselves
}


@pytest.fixture(scope="module")
def tight(stack: Any) -> Iterator[int]:
    """A gateway process of its own, with deadlines of a second and room for 64 connections and 4 requests."""
    from deploy.devstack import free_port

    port = free_port()
    proc = stack.start_gateway(1, port, TIGHT, name="gateway-hostile")
    try:
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def connect(port: int, timeout_s: float = 5.0) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=timeout_s)


def answer_of(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (or the socket's timeout)."""
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    return data


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0


def problem_code(answer: bytes) -> str:
    code: str = orjson.loads(answer.split(b"\r\n\r\n", 1)[1])["code"]
    return code


def signed_head(body: bytes, client_id: str = "demo-channel", length: int | None = None) -> bytes:
    """The request line and headers of a signed upload of ``body`` (a declared ``length`` if given)."""
    auth = sign_headers(
        client_id, f"{client_id}-secret", "POST", "/v1/invoices", body, int(time.time()), secrets.token_hex(16)
    )
    lines = [
        "POST /v1/invoices HTTP/1.1",
        "Host: gateway",
        "Content-Type: application/json",
        f"Content-Length: {len(body) if length is None else length}",
        *(f"{k}: {v}" for k, v in auth.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def upload_body(**overrides: Any) -> bytes:
    return orjson.dumps({"invoices": [sample.invoice(random.Random(), **overrides)]})


def test_a_huge_header_is_431_and_the_connection_closes(tight: int) -> None:
    with connect(tight) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: g\r\nX-Junk: " + b"a" * 200_000 + b"\r\n\r\n")
        answer = answer_of(sock)
    assert status_of(answer) == 431 and problem_code(answer) == "headers_too_large"
    assert b"connection: close" in answer.lower()


def test_headers_that_never_end_get_408_and_a_closed_connection_within_the_deadline(tight: int) -> None:
    with connect(tight) as sock, connect(tight) as silent:
        started = time.monotonic()
        sock.sendall(b"POST /v1/invoices HTTP/1.1\r\nHost: g\r\nX-Client-Id: demo-channel\r\n")  # and no more
        answer = answer_of(sock)
        took = time.monotonic() - started
        assert answer_of(silent) == b""  # a socket that never said anything is just closed
    assert status_of(answer) == 408 and problem_code(answer) == "request_timeout"
    assert 0.8 < took < 4


def test_a_body_that_trickles_is_408_and_holds_no_slot_meanwhile(tight: int, wait_for: Any) -> None:
    """More slow bodies of demo-channel than the process has slots: an honest upload of the same channel is
    answered 202 while they trickle, and each of them gets 408 at the body deadline."""
    body = upload_body()
    slow = [connect(tight) for _ in range(int(TIGHT["GATEWAY_MAX_IN_FLIGHT"]) * 3)]
    try:
        for sock in slow:
            sock.sendall(signed_head(body) + body[:1])
        reading = f"gateway_requests_reading_body {len(slow)}.0"
        wait_for(lambda: reading in httpx.get(f"http://127.0.0.1:{tight}/metrics").text, 5)
        with SignedClient(f"http://127.0.0.1:{tight}", "demo-channel", "demo-channel-secret") as honest:
            assert honest.upload([sample.invoice(random.Random())]).status_code == 202
        answers = [answer_of(sock) for sock in slow]
    finally:
        for sock in slow:
            sock.close()
    assert {status_of(a) for a in answers} == {408}
    assert {problem_code(a) for a in answers} == {"request_timeout"}


def test_a_body_that_never_ends_is_413_at_the_limit(tight: int) -> None:
    head = signed_head(b"", length=None).replace(b"Content-Length: 0", b"Transfer-Encoding: chunked")
    chunk = b"4000\r\n" + b"[" * 0x4000 + b"\r\n"
    with connect(tight) as sock:
        sock.sendall(head)
        sent = 0
        try:
            while sent < 2 * 1024 * 1024:  # twice the limit, then stop: the answer came long before
                sock.sendall(chunk)
                sent += 0x4000
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = answer_of(sock)
    assert status_of(answer) == 413 and problem_code(answer) == "body_too_large"


def test_idle_sockets_past_the_cap_evict_each_other_not_the_honest_channel(tight: int) -> None:
    idle = [connect(tight) for _ in range(int(TIGHT["GATEWAY_MAX_CONNECTIONS"]) * 2)]
    try:
        with SignedClient(f"http://127.0.0.1:{tight}", "demo-channel", "demo-channel-secret") as honest:
            assert honest.upload([sample.invoice(random.Random())]).status_code == 202
        closed = sum(1 for sock in idle[: len(idle) // 2] if _closed(sock))
    finally:
        for sock in idle:
            sock.close()
    assert closed >= len(idle) // 2 - 2  # the oldest were closed for the newer ones


def _closed(sock: socket.socket) -> bool:
    sock.settimeout(2)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def test_json_nested_100000_deep_is_400(channel: SignedClient) -> None:
    deep = b'{"invoices": [' + b"[" * 100_000 + b"]" * 100_000 + b"]}"
    resp = channel.request("POST", "/v1/invoices", deep, {"Content-Type": "application/json"})
    assert resp.status_code == 400 and resp.json()["code"] == "malformed_body"
    reversal = b'{"reversals": [' + b"[" * 100_000 + b"]" * 100_000 + b"]}"
    resp = channel.request("POST", "/v1/reversals", reversal, {"Content-Type": "application/json"})
    assert resp.status_code == 400 and resp.json()["code"] == "malformed_body"


def test_a_900_kb_seller_name_is_that_invoices_rejection(channel: SignedClient) -> None:
    rng = random.Random()
    body = orjson.dumps({"invoices": [sample.invoice(rng, seller_name="店" * 300_000), sample.invoice(rng)]})
    assert len(body) > 900_000
    resp = channel.request("POST", "/v1/invoices", body, {"Content-Type": "application/json"})
    assert resp.status_code == 202
    assert [(r["status"], r.get("reason")) for r in resp.json()["results"]] == [
        ("rejected", "invalid_text"),
        ("accepted", None),
    ]


def test_invalid_utf_8_is_400_in_a_body_an_invoices_rejection_inside_it_and_401_in_a_header(
    channel: SignedClient,
) -> None:
    json = {"Content-Type": "application/json"}
    resp = channel.request("POST", "/v1/invoices", b'{"invoices\xff": []}', json)
    assert resp.status_code == 400 and resp.json()["code"] == "malformed_body"
    inv = upload_body()[len(b'{"invoices":[') : -len(b"]}")]
    bad = inv.replace("合肥".encode(), b"\xff\xfe")
    resp = channel.request("POST", "/v1/invoices", b'{"invoices": [' + bad + b"," + inv + b"]}", json)
    assert resp.status_code == 202
    assert [(r["status"], r.get("reason")) for r in resp.json()["results"]] == [
        ("rejected", "invalid_shape"),
        ("accepted", None),
    ]
    body = upload_body()
    headers = sign_headers(
        "demo-channel", "demo-channel-secret", "POST", "/v1/invoices", body, int(time.time()), secrets.token_hex(16)
    )
    raw = [(k.encode(), v.encode()) for k, v in headers.items() if k != "X-Client-Id"] + [(b"X-Client-Id", b"\xff\xfe")]
    resp = channel.http.post("/v1/invoices", content=body, headers=raw)
    assert resp.status_code == 401 and resp.json()["code"] == "unknown_client"


def test_a_replay_as_another_channel_or_again_is_401(channel: SignedClient) -> None:
    body = upload_body()
    headers = sign_headers(
        "demo-channel", "demo-channel-secret", "POST", "/v1/invoices", body, int(time.time()), secrets.token_hex(16)
    )
    assert channel.http.post("/v1/invoices", content=body, headers=headers).status_code == 202
    again = channel.http.post("/v1/invoices", content=body, headers=headers)
    assert again.status_code == 401 and again.json()["code"] == "replayed_nonce"
    as_other = channel.http.post("/v1/invoices", content=body, headers={**headers, "X-Client-Id": "demo-channel-2"})
    assert as_other.status_code == 401 and as_other.json()["code"] == "bad_signature"


def test_forged_signatures_at_rate_are_401_without_a_store_command(base_url: str, settings: Settings) -> None:
    """A known channel's id with made-up signatures, and unknown ids: 401 each, and Redis runs no command of
    theirs (its commands by name, before and after; the gateway's background reads are other commands)."""
    state = redis.Redis.from_url(settings.stores.redis_url)
    spent = ("cmdstat_set", "cmdstat_evalsha", "cmdstat_eval", "cmdstat_fcall")

    def used() -> int:
        stats = state.info("commandstats")
        return sum(int(stats[name]["calls"]) for name in spent if name in stats)

    before = used()
    body = upload_body()
    statuses = []
    with SignedClient(base_url, "demo-channel", "a-guessed-secret") as forger:
        statuses += [forger.request("POST", "/v1/invoices", body).status_code for _ in range(150)]
    with SignedClient(base_url, "nobody-we-know", "x") as stranger:
        statuses += [stranger.request("POST", "/v1/invoices", body).status_code for _ in range(150)]
    assert set(statuses) == {401}
    assert used() == before


def test_an_honest_channel_keeps_its_rate_beside_a_thousand_slow_and_idle_connections(
    stack: Any, wait_for: Any
) -> None:
    """A gateway of two processes with the default limits (the session's own does not shed): one host holds 300
    slow uploads of demo-channel and 700 sockets that never finish their headers, reopening each one closed,
    while demo-channel uploads 10 invoices 5 times a second. Bounds are generous (a shared machine); the
    figures are measured in benchmarks/hostile_bench.py."""
    from deploy.devstack import free_port
    from loadtest.hostile import honest, run_attack

    port = free_port()
    defaults = {"GATEWAY_MAX_IN_FLIGHT": "8", "GATEWAY_TARGET_LATENCY_MS": "80"}
    proc = stack.start_gateway(2, port, defaults, name="gateway-besieged")
    url = f"http://127.0.0.1:{port}"
    attacker = run_attack(port, 300, 700, 30)
    try:
        reading = re.compile(r"^gateway_requests_reading_body ([0-9.]+)$", re.M)

        def besieged() -> bool:
            found = reading.search(httpx.get(f"{url}/metrics").text)
            return found is not None and float(found[1]) >= 250

        wait_for(besieged, 20)
        result = honest(url, 5, 12)
        out, _ = attacker.communicate(timeout=60)
    finally:
        attacker.kill()
        proc.terminate()
        proc.wait(10)
    tally = orjson.loads(out.splitlines()[-1])
    assert result.goodput >= 0.9, result
    assert not any(s.startswith("5") and s != "503" for s in result.statuses), result
    assert tally["opened"] >= 1000 and tally["closed_by_server"] > 0, tally
