"""The tests' and load tests' signing client: channel_client's (the package a channel would use), but sending
each request once, since they look at every answer, a 429 or 503 included."""

from __future__ import annotations

import secrets
import time

from channel_client import Client, Retry
from channel_client.signing import sign_headers


def auth_headers(client_id: str, secret: str, method: str, path: str, body: bytes = b"") -> dict[str, str]:
    """The four authentication headers of a request signed now, with a fresh nonce."""
    return sign_headers(client_id, secret, method, path, body, int(time.time()), secrets.token_hex(16))


class SignedClient(Client):
    def __init__(self, base_url: str, client_id: str, secret: str, timeout_s: float = 40.0) -> None:
        super().__init__(base_url, client_id, secret, timeout_s, retry=Retry(attempts=1))
