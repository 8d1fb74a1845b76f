"""A Python client generated from docs/openapi.json by openapi-python-client, as a channel developer would make
one, calls the dev stack: it only has to add the signature (an httpx hook), everything else comes from the
document."""

from __future__ import annotations

import importlib
import random
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from channel_client.signing import sign_headers
from loadtest import sample

ROOT = Path(__file__).resolve().parent.parent.parent
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    folder = tmp_path_factory.mktemp("generated")
    argv = [str(BIN / "openapi-python-client"), "generate", "--path", str(ROOT / "docs" / "openapi.json")]
    argv += ["--meta", "none", "--output-path", str(folder / "gateway_api")]
    done = subprocess.run(argv, capture_output=True, text=True, env={"PATH": f"{BIN}:/usr/bin:/bin"}, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    sys.path.insert(0, str(folder))
    try:
        yield importlib.import_module("gateway_api")
    finally:
        sys.path.remove(str(folder))
        for name in [m for m in sys.modules if m == "gateway_api" or m.startswith("gateway_api.")]:
            del sys.modules[name]


def signer(client_id: str, secret: str) -> Any:
    """The one thing a document cannot generate: the four headers over the request as it will be sent."""

    def sign(request: httpx.Request) -> None:
        path = request.url.raw_path.decode()
        nonce = secrets.token_hex(16)
        request.headers.update(
            sign_headers(client_id, secret, request.method, path, request.content, int(time.time()), nonce)
        )

    return sign


def test_a_generated_client_uploads_follows_and_checks_receipts(generated: Any, base_url: str, drain: Any) -> None:
    api = importlib.import_module("gateway_api.api.channel")
    models = importlib.import_module("gateway_api.models")
    hooks = {"event_hooks": {"request": [signer("demo-channel", "demo-channel-secret")]}}
    authenticated = generated.AuthenticatedClient(base_url=base_url, token="-", httpx_args=hooks)
    with authenticated as client:
        run_as_a_channel(client, models, api, drain)


def run_as_a_channel(client: Any, models: Any, api: Any, drain: Any) -> None:
    headers = {"x_client_id": "-", "x_timestamp": "-", "x_nonce": "-", "x_signature": "-"}  # set by the hook
    invoice = sample.invoice(random.Random())
    events = importlib.import_module("gateway_api.api.channel.events")
    start = events.sync(client=client, limit=1000, **headers)
    while start.events:
        start = events.sync(client=client, after=start.next_, limit=1000, **headers)
    upload = importlib.import_module("gateway_api.api.channel.upload_invoices")
    answer = upload.sync(client=client, body=models.Upload.from_dict({"invoices": [invoice]}), **headers)
    assert isinstance(answer, models.UploadAnswer), answer
    accepted = answer.results[0]
    assert isinstance(accepted, models.Accepted) and accepted.receipt.startswith("v2.")
    drain()
    status = importlib.import_module("gateway_api.api.channel.invoice_status").sync(
        accepted.key, client=client, **headers
    )
    assert isinstance(status, models.InvoiceStatus) and status.status == "eligible"
    changes = events.sync(client=client, after=start.next_, limit=1000, **headers)
    assert [(e.key, e.status) for e in changes.events if e.key == accepted.key] == [
        (accepted.key, "verified"),
        (accepted.key, "eligible"),
    ]
    keys = importlib.import_module("gateway_api.api.any_role.receipt_keys").sync(client=client, **headers)
    assert isinstance(keys, models.Keys) and keys.keys[0].crv == "Ed25519"
    missing = status_of(api, client, headers, "26349999999999999996")
    assert missing.code == "unknown_invoice" and missing.status == 404


def status_of(api: Any, client: Any, headers: dict[str, str], key: str) -> Any:
    module = importlib.import_module(f"{api.__name__}.invoice_status")
    return module.sync(key, client=client, **headers)
