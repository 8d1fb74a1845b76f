"""Secrets rotate without downtime: a client's secret (two valid during a window), the receipts' key (old
receipts keep verifying); and the person key, which cannot change mid-campaign, is refused."""

from __future__ import annotations

import random
import subprocess
from typing import Any

import httpx
import pytest

from deploy.devstack import VENV_BIN, StackError, free_port
from gateway import receipts
from loadtest import sample
from loadtest.client import SignedClient


def cli(stack: Any, *argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    command = [str(VENV_BIN / argv[0]), *argv[1:]]
    return subprocess.run(command, env={**stack.env, **(env or {})}, capture_output=True, text=True, timeout=60)


def works(base_url: str, client_id: str, secret: str) -> bool:
    with SignedClient(base_url, client_id, secret) as client:
        return bool(client.upload([sample.invoice(random.Random())]).status_code == 202)


def test_a_rotated_client_signs_with_either_secret_in_its_window_then_with_the_new_one_only(
    stack: Any, base_url: str, wait_for: Any
) -> None:
    assert cli(stack, "gateway", "add-client", "rotating-channel", "the-first-secret-0001", "channel").returncode == 0
    wait_for(lambda: works(base_url, "rotating-channel", "the-first-secret-0001"), 10)  # NOTIFY: no 30 s refresh
    done = cli(stack, "gateway", "rotate-secret", "rotating-channel", "--old-valid-for", "4")
    assert done.returncode == 0, done.stderr
    new = done.stdout.strip()
    assert len(new) >= 40 and "valid until" in done.stderr
    wait_for(lambda: works(base_url, "rotating-channel", new), 10)
    assert works(base_url, "rotating-channel", "the-first-secret-0001")  # the window is open
    again = cli(stack, "gateway", "rotate-secret", "rotating-channel")
    assert again.returncode == 1 and "under way" in again.stderr
    wait_for(lambda: not works(base_url, "rotating-channel", "the-first-secret-0001"), 15)  # the window closed
    assert works(base_url, "rotating-channel", new)
    assert cli(stack, "gateway", "rotate-secret", "nobody-at-all").returncode == 1


def test_a_replaced_secret_stops_at_once(stack: Any, base_url: str, wait_for: Any) -> None:
    assert cli(stack, "gateway", "add-client", "leaky-channel", "a-leaked-secret-00001", "channel").returncode == 0
    wait_for(lambda: works(base_url, "leaky-channel", "a-leaked-secret-00001"), 10)
    assert cli(stack, "gateway", "rotate-secret", "leaky-channel").returncode == 0
    assert cli(stack, "gateway", "add-client", "leaky-channel", "a-fresh-secret-000001", "channel").returncode == 0
    wait_for(lambda: works(base_url, "leaky-channel", "a-fresh-secret-000001"), 10)
    assert not works(base_url, "leaky-channel", "a-leaked-secret-00001")  # no window kept: it leaked


def test_receipts_of_a_retired_key_keep_verifying_and_a_gateway_refuses_to_sign_with_it(
    stack: Any, channel: SignedClient, tmp_path: Any
) -> None:
    key_file = tmp_path / "next-receipt-key.pem"
    key_file.write_bytes(receipts.new_key_pem())
    port = free_port()
    env = {"GATEWAY_RECEIPT_SIGNING_KEY_FILE": str(key_file)}
    proc = stack.start_gateway(1, port, env, name="gateway-next-key")
    try:
        with SignedClient(f"http://127.0.0.1:{port}", "demo-channel", "demo-channel-secret") as rotated:
            result = rotated.upload([sample.invoice(random.Random())]).json()["results"][0]
    finally:
        proc.terminate()
        proc.wait(10)
    kid = result["receipt"].split(".")[1]
    assert cli(stack, "gateway", "retire-receipt-key", kid).returncode == 0
    published = {k["kid"]: k for k in channel.keys().json()["keys"]}
    assert published[kid]["not_after"] is not None and len(published) >= 2  # the session's key and this one
    keys = {k: receipts.unb64url(v["x"]) for k, v in published.items()}
    assert receipts.verify(result["receipt"], result["key"], "demo-channel", keys, "").valid  # offline
    body = {"key": result["key"], "receipt": result["receipt"]}
    answer = channel.request("POST", "/v1/receipts/verify", httpx.Request("POST", "/", json=body).content)
    assert answer.json()["valid"] and answer.json()["kid"] == kid
    with pytest.raises(StackError):
        stack.start_gateway(1, free_port(), env, name="gateway-retired-key")


def test_the_person_key_cannot_change_mid_campaign(stack: Any) -> None:
    other = {"GATEWAY_PERSON_SECRET": "another-person-secret"}
    done = cli(stack, "gateway-worker", "run", "--burst", env=other)
    assert done.returncode == 2
    assert done.stderr.startswith("error: GATEWAY_PERSON_SECRET: not the key campaign ")
    assert "another" not in done.stderr
    with pytest.raises(StackError):
        stack.start_gateway(1, free_port(), other, name="gateway-other-person-key")
