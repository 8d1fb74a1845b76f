"""The gateway's public API as the draw service (and an auditor) calls it: each request signed as SPEC.md's
"Authentication" says, with the standard library only (urllib), so that ``draw verify`` can read the feed from
the API on a machine that has nothing but Python. The signature is the channels' (docs/hashing.md), written out
again here rather than imported: this folder stands alone.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
import urllib.error
import urllib.request
from typing import Any


class ApiError(Exception):
    """The gateway refused a request: its status and problem document (``code``, ``detail``)."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        self.status = status
        self.problem = problem
        super().__init__(f"HTTP {status} {problem.get('code', '')}: {problem.get('detail', problem)}")


class Gateway:
    """A signed client of one gateway, as one client id."""

    def __init__(self, url: str, client_id: str, secret: str, timeout_s: float = 60.0) -> None:
        self.url = url.rstrip("/")
        self.client_id = client_id
        self.secret = secret
        self.timeout_s = timeout_s

    def headers(self, method: str, path: str, body: bytes) -> dict[str, str]:
        """The four authentication headers of a request (method, path with its raw query, body)."""
        ts, nonce = str(int(time.time())), secrets.token_hex(16)
        canonical = "\n".join((method, path, ts, nonce, hashlib.sha256(body).hexdigest()))
        signature = hmac.new(self.secret.encode(), canonical.encode(), hashlib.sha256).hexdigest()
        return {"X-Client-Id": self.client_id, "X-Timestamp": ts, "X-Nonce": nonce, "X-Signature": signature}

    def call(self, method: str, path: str, body: Any = None) -> Any:
        """The JSON answer of a signed request; ``ApiError`` for a problem answer."""
        data = b"" if body is None else json.dumps(body, ensure_ascii=False).encode()
        headers = self.headers(method, path, data)
        if body is not None:
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self.url + path, data=data or None, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                problem = json.loads(raw)
            except ValueError:
                problem = {"detail": raw.decode(errors="replace")[:200]}
            raise ApiError(exc.code, problem) from None

    def batches(self, after: int = 0, wait_s: float = 0.0) -> list[dict[str, Any]]:
        """One page of sealed batches after ``after`` (GET /v1/feed), waiting up to ``wait_s`` for one."""
        query = f"after={after}&limit=100" + (f"&wait={wait_s:g}" if wait_s else "")
        found: list[dict[str, Any]] = self.call("GET", f"/v1/feed?{query}")["batches"]
        return found

    def feed(self, after: int = 0) -> list[dict[str, Any]]:
        """Every sealed batch after ``after``, oldest first."""
        found: list[dict[str, Any]] = []
        while page := self.batches(after):
            found += page
            after = page[-1]["seq"]
        return found
