"""``Client``: every call signed afresh, and retried when the gateway says when (``429``, ``503`` with
``Retry-After``) or the connection failed.

Retrying is safe for every call: an upload sent again after a lost answer is answered ``duplicate`` with the
receipt of its first upload (the gateway deduplicates across channels and requests), a reversal sent again is
``already_reversed``, and reads change nothing. Each try is signed again, with a fresh nonce and timestamp.
"""

from __future__ import annotations

import random
import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple
from urllib.parse import urlencode

import httpx
import orjson

from channel_client.signing import sign_headers

RETRY_STATUSES = (429, 503)


class Retry(NamedTuple):
    """How a call is tried again: ``attempts`` in all (1: never again); a refused call waits what its
    ``Retry-After`` says, at most ``max_wait_s``; a failed connection waits ``backoff_s``, doubling, with
    jitter."""

    attempts: int = 4
    max_wait_s: float = 30.0
    backoff_s: float = 0.2


DEFAULT_RETRY = Retry()


class Client:
    def __init__(
        self,
        base_url: str,
        client_id: str,
        secret: str,
        timeout_s: float = 40.0,
        retry: Retry = DEFAULT_RETRY,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.client_id = client_id
        self.secret = secret
        self.retry = retry
        self._sleep = sleep
        # Long polls wait up to 30 s: the timeout is above that.
        self.http = httpx.Client(base_url=base_url, timeout=timeout_s, transport=transport)

    def request(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        timestamp: int | None = None,
        nonce: str | None = None,
    ) -> httpx.Response:
        """Sign and send; ``path`` includes its query string, exactly as it will be sent. A given ``timestamp`` or
        ``nonce`` (to test the gateway) is sent once, never retried."""
        tries = 1 if timestamp is not None or nonce is not None else max(1, self.retry.attempts)
        for attempt in range(1, tries + 1):
            last = attempt == tries
            signed = sign_headers(
                self.client_id,
                self.secret,
                method,
                path,
                body,
                int(time.time()) if timestamp is None else timestamp,
                nonce or secrets.token_hex(16),
            )
            try:
                resp = self.http.request(method, path, content=body, headers={**signed, **(headers or {})})
            except httpx.TransportError:
                if last:
                    raise
                self._sleep(self._backoff(attempt))
                continue
            if resp.status_code not in RETRY_STATUSES or last:
                return resp
            self._sleep(self._retry_after(resp))
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _retry_after(self, resp: httpx.Response) -> float:
        raw = resp.headers.get("retry-after", "")
        seconds = float(raw) if raw.isascii() and raw.isdigit() else 1.0
        return min(seconds, self.retry.max_wait_s)

    def _backoff(self, attempt: int) -> float:
        wait: float = self.retry.backoff_s * 2 ** (attempt - 1) * random.uniform(0.5, 1.5)
        return min(self.retry.max_wait_s, wait)

    def _get(self, path: str, query: dict[str, Any]) -> httpx.Response:
        kept = {k: v for k, v in query.items() if v is not None}
        return self.request("GET", f"{path}?{urlencode(kept)}" if kept else path)

    def _post(self, path: str, document: Any) -> httpx.Response:
        return self.request("POST", path, orjson.dumps(document), {"Content-Type": "application/json"})

    def upload(self, invoices: list[dict[str, Any]]) -> httpx.Response:
        """``POST /v1/invoices``: a result per invoice (``202``)."""
        return self._post("/v1/invoices", {"invoices": invoices})

    def status(self, key: str) -> httpx.Response:
        """``GET /v1/invoices/{key}``: its status and history."""
        return self.request("GET", f"/v1/invoices/{key}")

    def invoices(
        self,
        user: str,
        since: str | None = None,
        until: str | None = None,
        limit: int | None = None,
        after: str | None = None,
    ) -> httpx.Response:
        """``GET /v1/invoices?user=``: a consumer's invoices (``since``/``until``: dates of acceptance)."""
        return self._get("/v1/invoices", {"user": user, "from": since, "to": until, "limit": limit, "after": after})

    def events(self, after: str = "", limit: int | None = None, wait: float | None = None) -> httpx.Response:
        """``GET /v1/events``: the channel's status changes after the cursor."""
        return self._get(
            "/v1/events", {"after": after or None, "limit": limit, "wait": None if wait is None else f"{wait:g}"}
        )

    def follow(self, after: str = "", wait: float = 25.0) -> Iterator[tuple[dict[str, Any], str]]:
        """Every event after the cursor, forever (long polls of ``wait`` seconds), each with the cursor to
        resume from once it is handled: store that cursor, and a restart loses and repeats nothing."""
        while True:
            resp = self.events(after, wait=wait)
            resp.raise_for_status()
            page = resp.json()
            for event in page["events"]:
                yield event, event["cursor"]
            after = page["next"]

    def reverse(self, reversals: list[dict[str, Any]]) -> httpx.Response:
        """``POST /v1/reversals``: red-letter reversals (``number``, ``red_number``, ``code``, ``reason``)."""
        return self._post("/v1/reversals", {"reversals": reversals})

    def verify_receipt(self, key: str, receipt: str) -> httpx.Response:
        """``POST /v1/receipts/verify``: the gateway's check of a receipt of either format."""
        return self._post("/v1/receipts/verify", {"key": key, "receipt": receipt})

    def keys(self) -> httpx.Response:
        """``GET /v1/keys``: the receipt keys, for ``channel_client.receipts.keys_of``."""
        return self.request("GET", "/v1/keys")

    def feed(self, after: int = 0, limit: int = 10, wait: float | None = None) -> httpx.Response:
        """``GET /v1/feed`` (role draw)."""
        query = f"after={after}&limit={limit}" + ("" if wait is None else f"&wait={wait:g}")
        return self.request("GET", f"/v1/feed?{query}")

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
