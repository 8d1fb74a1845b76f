"""The upload's direct route (gateway/middleware.py ``Direct``) answers as Starlette's router and exception
middleware would: the endpoint's response, a handled exception's problem, an unhandled one raised on to
ServerErrorMiddleware; any other request, or one under a root path, goes through the app behind it."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from core.errors import StoreUnavailable
from gateway import codes
from gateway.errors import HANDLERS, Problem
from gateway.middleware import Direct


def call(app: Any, method: str = "POST", path: str = "/v1/invoices", root_path: str = "") -> tuple[int, dict[str, Any]]:
    scope = {"type": "http", "method": method, "path": path, "root_path": root_path, "headers": [], "state": {}}
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], orjson.loads(body)


async def behind(scope: Any, receive: Any, send: Any) -> None:
    await Response(orjson.dumps({"by": "starlette"}), 200)(scope, receive, send)


def direct(raising: Exception | None) -> Direct:
    async def endpoint(request: Request) -> Response:
        if raising is not None:
            raise raising
        return Response(orjson.dumps({"by": "direct"}), 202)

    return Direct(behind, endpoints={("POST", "/v1/invoices"): endpoint}, handlers=HANDLERS)


def test_the_route_is_called_directly_and_others_go_behind() -> None:
    assert call(direct(None)) == (202, {"by": "direct"})
    assert call(direct(None), method="GET") == (200, {"by": "starlette"})
    assert call(direct(None), path="/v1/invoices/k") == (200, {"by": "starlette"})
    assert call(direct(None), root_path="/gateway") == (200, {"by": "starlette"})


@pytest.mark.parametrize(
    ("raised", "status", "code"),
    [
        (Problem(codes.CHANNEL_RATE_LIMITED, "slow down"), 429, "channel_rate_limited"),
        (StoreUnavailable("redis"), 503, "store_unavailable"),
        (HTTPException(405), 405, "method_not_allowed"),
    ],
)
def test_a_handled_exception_is_answered_by_its_handler(raised: Exception, status: int, code: str) -> None:
    got_status, body = call(direct(raised))
    assert (got_status, body["code"]) == (status, code)


def test_any_other_exception_goes_on_to_the_server_error_middleware() -> None:
    with pytest.raises(ValueError, match="a bug"):
        call(direct(ValueError("a bug")))
