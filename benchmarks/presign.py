"""Pre-signed upload requests for wrk (benchmarks/presigned.lua), so that the generator spends no time signing.

Each request is complete HTTP/1.1 text: fresh invoices of fresh consumers (benchmarks/loadgen.Invoices), its
own nonce, signed now (valid for the gateway's clock skew, 300 s: write them just before the run).
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.loadgen import Invoices
from loadtest.client import auth_headers


def write(path: Path, host: str, client_id: str, secret: str, count: int, invoices: int, inv: Invoices) -> None:
    """``count`` requests of ``invoices`` invoices each, NUL-separated, into ``path``."""
    with open(path, "wb") as f:
        for _ in range(count):
            body = inv.body(invoices)
            headers = auth_headers(client_id, secret, "POST", "/v1/invoices", body)
            head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            f.write(
                (
                    f"POST /v1/invoices HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(body)}\r\n{head}\r\n"
                ).encode()
                + body
                + b"\0"
            )
