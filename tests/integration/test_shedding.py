"""Load shedding through a real gunicorn with tight settings, beside the stack's own gateway."""

from __future__ import annotations

import random
import threading
import time
from typing import Any

import httpx

from loadtest import sample
from loadtest.client import SignedClient


def test_requests_past_the_in_flight_cap_get_a_fast_503_and_ops_endpoints_still_answer(
    stack: Any, wait_for: Any
) -> None:
    from deploy.devstack import free_port

    port = free_port()
    only_the_cap = {"GATEWAY_MAX_IN_FLIGHT": "3", "GATEWAY_BUSY_SHARE": "1"}  # fair shares off: the hard cap alone
    proc = stack.start_gateway(1, port, only_the_cap, name="gateway-tight")
    url = f"http://127.0.0.1:{port}"
    try:
        holders = [threading.Thread(target=_long_poll, args=(url,)) for _ in range(3)]
        for t in holders:
            t.start()
        with SignedClient(url, "demo-channel", "demo-channel-secret") as channel:
            wait_for(lambda: "ratelimit_requests_in_flight 3.0" in httpx.get(f"{url}/metrics").text, 10)
            started = time.monotonic()
            refused = channel.upload([sample.invoice(random.Random())])
            took = time.monotonic() - started
            assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
            assert refused.json()["code"] == "overloaded" and "in_flight" in refused.json()["detail"]
            assert took < 0.5
            assert httpx.get(f"{url}/readyz").status_code == 200  # readiness does not flap with shedding
            assert "ratelimit_shed_requests_total" in httpx.get(f"{url}/metrics").text
            for t in holders:
                t.join(10)
            assert channel.upload([sample.invoice(random.Random())]).status_code == 202
    finally:
        proc.terminate()
        proc.wait(10)


def test_a_saturated_pipeline_sheds_until_it_drains(stack: Any, drain: Any, wait_for: Any) -> None:
    from deploy.devstack import free_port

    port = free_port()
    tight = {"GATEWAY_SHED_HIGH_AGE_S": "1", "GATEWAY_SHED_LOW_AGE_S": "0.5"}
    proc = stack.start_gateway(1, port, tight, name="gateway-saturating")
    url = f"http://127.0.0.1:{port}"
    rng = random.Random()
    try:
        with SignedClient(url, "demo-channel", "demo-channel-secret") as channel:
            drain()
            assert channel.upload([sample.invoice(rng)]).status_code == 202  # nobody drains it: it ages

            def shedding() -> bool:
                resp = channel.upload([sample.invoice(rng)])
                return resp.status_code == 503 and "pipeline_saturated" in resp.json()["detail"]

            wait_for(shedding, 15)
            drain()
            wait_for(lambda: channel.upload([sample.invoice(rng)]).status_code == 202, 15)
    finally:
        proc.terminate()
        proc.wait(10)
        drain()


def _long_poll(url: str, wait_s: float = 4) -> None:
    with SignedClient(url, "demo-draw", "demo-draw-secret") as draw:
        draw.feed(after=10**9, wait=wait_s)


def test_a_channel_under_its_share_waits_for_a_slot_that_the_channel_holding_them_cannot_take(
    stack: Any, wait_for: Any
) -> None:
    from deploy.devstack import free_port

    port = free_port()
    env = {
        "GATEWAY_MAX_IN_FLIGHT": "2",
        "GATEWAY_BUSY_SHARE": "1",
        "GATEWAY_TARGET_LATENCY_MS": "0",
        "GATEWAY_FAIR_WAIT_MS": "5000",
    }
    proc = stack.start_gateway(1, port, env, name="gateway-fair")
    url = f"http://127.0.0.1:{port}"
    try:
        holders = [threading.Thread(target=_long_poll, args=(url, 3)) for _ in range(2)]
        for t in holders:
            t.start()
        with SignedClient(url, "demo-channel", "demo-channel-secret") as channel:
            wait_for(lambda: "ratelimit_requests_in_flight 2.0" in httpx.get(f"{url}/metrics").text, 10)
            with SignedClient(url, "demo-draw", "demo-draw-secret") as draw:
                greedy = draw.feed(after=10**9)  # the draw client holds every slot: over its share, no wait
            assert greedy.status_code == 503 and "in_flight" in greedy.json()["detail"]
            started = time.monotonic()
            waited = channel.upload([sample.invoice(random.Random())])  # under its share: waits for a slot
            assert waited.status_code == 202, waited.text
            assert 0.2 < time.monotonic() - started < 5  # it waited for a long poll to end
        for t in holders:
            t.join(10)
    finally:
        proc.terminate()
        proc.wait(10)
