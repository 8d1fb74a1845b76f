"""channel_client's retries, against a stand-in for the gateway (httpx.MockTransport): each try signed anew,
Retry-After honoured and capped, connection failures backed off, the last answer returned as it is."""

from __future__ import annotations

import httpx
import pytest

from channel_client import Client, Retry


def scripted(*answers: int | Exception) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    seen: list[httpx.Request] = []
    todo = list(answers)

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = todo.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return httpx.Response(answer, headers={"Retry-After": "7"} if answer in (429, 503) else {}, json={})

    return httpx.MockTransport(handle), seen


def test_a_refused_call_waits_its_retry_after_and_is_signed_anew() -> None:
    transport, seen = scripted(429, 503, 202)
    waits: list[float] = []
    with Client("http://gw", "c", "s", sleep=waits.append, transport=transport) as client:
        assert client.upload([{"number": "1"}]).status_code == 202
    assert waits == [7.0, 7.0]
    nonces = {r.headers["x-nonce"] for r in seen}
    assert len(nonces) == 3 and len({r.headers["x-signature"] for r in seen}) == 3
    assert {r.content for r in seen} == {b'{"invoices":[{"number":"1"}]}'}


def test_waits_are_capped_and_the_last_answer_is_returned() -> None:
    transport, seen = scripted(503, 503)
    waits: list[float] = []
    retry = Retry(attempts=2, max_wait_s=2.0)
    with Client("http://gw", "c", "s", retry=retry, sleep=waits.append, transport=transport) as client:
        assert client.status("26341000000000000001").status_code == 503
    assert waits == [2.0] and len(seen) == 2


def test_a_failed_connection_backs_off_then_raises_when_tries_are_spent() -> None:
    transport, seen = scripted(httpx.ConnectError("down"), httpx.ConnectError("down"), httpx.ConnectError("down"))
    waits: list[float] = []
    client = Client("http://gw", "c", "s", retry=Retry(attempts=3), sleep=waits.append, transport=transport)
    with client, pytest.raises(httpx.ConnectError):
        client.events("")
    assert len(seen) == 3 and len(waits) == 2 and waits[0] < waits[1] * 2


def test_a_request_with_its_own_nonce_is_sent_once() -> None:
    transport, seen = scripted(429)
    with Client("http://gw", "c", "s", sleep=lambda _: None, transport=transport) as client:
        assert client.request("GET", "/v1/events", nonce="n" * 16).status_code == 429
    assert len(seen) == 1
