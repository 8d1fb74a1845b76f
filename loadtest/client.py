"""A channel's (or the draw service's) signing HTTP client, as a channel's developer would write it."""

from __future__ import annotations

import secrets
import time
from typing import Any

import httpx
import orjson

from gateway.signing import sign_headers


def auth_headers(client_id: str, secret: str, method: str, path: str, body: bytes = b"") -> dict[str, str]:
    """The four authentication headers of a request signed now, with a fresh nonce."""
    return sign_headers(client_id, secret, method, path, body, int(time.time()), secrets.token_hex(16))


class SignedClient:
    def __init__(self, base_url: str, client_id: str, secret: str, timeout_s: float = 40.0) -> None:
        self.client_id = client_id
        self.secret = secret
        self.http = httpx.Client(base_url=base_url, timeout=timeout_s)

    def request(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        timestamp: int | None = None,
        nonce: str | None = None,
    ) -> httpx.Response:
        """Sign and send; ``path`` includes its query string, exactly as it will be sent."""
        signed = sign_headers(
            self.client_id,
            self.secret,
            method,
            path,
            body,
            int(time.time()) if timestamp is None else timestamp,
            nonce or secrets.token_hex(16),
        )
        return self.http.request(method, path, content=body, headers={**signed, **(headers or {})})

    def upload(self, invoices: list[dict[str, Any]]) -> httpx.Response:
        body = orjson.dumps({"invoices": invoices})
        return self.request("POST", "/v1/invoices", body, {"Content-Type": "application/json"})

    def status(self, key: str) -> httpx.Response:
        return self.request("GET", f"/v1/invoices/{key}")

    def feed(self, after: int = 0, limit: int = 10, wait: float | None = None) -> httpx.Response:
        query = f"after={after}&limit={limit}" + ("" if wait is None else f"&wait={wait:g}")
        return self.request("GET", f"/v1/feed?{query}")

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> SignedClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
