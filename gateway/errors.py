"""One small hierarchy of errors, each mapped to an RFC 9457 problem+json answer in one place.

A store's failure anywhere below a route is ``core.errors.StoreUnavailable`` (or one of ``STORE_ERRORS`` that
nobody converted): both are answered here, 503 with ``Retry-After``. Anything else unexpected is our bug: 500.

Problem types: ``about:blank`` but for ``urn:invoice-gateway:problem:rate-limited`` (429),
``urn:invoice-gateway:problem:unavailable`` (503, a store) and ``urn:invoice-gateway:problem:overloaded`` (503,
shedding, answered by gateway/middleware.py).
"""

from __future__ import annotations

import logging

import orjson
from starlette.requests import Request
from starlette.responses import Response

from core.errors import STORE_ERRORS, StoreUnavailable

PROBLEM_TYPE = "application/problem+json"
log = logging.getLogger(__name__)


class Problem(Exception):
    status = 500
    title = "Internal error"
    type = "about:blank"

    def __init__(self, code: str, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.headers = headers or {}


class BadRequest(Problem):
    status = 400
    title = "Bad request"


class Unauthorized(Problem):
    status = 401
    title = "Unauthorized"


class Forbidden(Problem):
    status = 403
    title = "Forbidden"


class NotFound(Problem):
    status = 404
    title = "Not found"


class Conflict(Problem):
    status = 409
    title = "Conflict"


class PayloadTooLarge(Problem):
    status = 413
    title = "Payload too large"


class UnsupportedMediaType(Problem):
    status = 415
    title = "Unsupported media type"


class TooManyRequests(Problem):
    status = 429
    title = "Too many requests"
    type = "urn:invoice-gateway:problem:rate-limited"


def problem_response(
    status: int,
    title: str,
    code: str,
    detail: str,
    headers: dict[str, str] | None = None,
    problem_type: str = "about:blank",
) -> Response:
    body = {"type": problem_type, "title": title, "status": status, "code": code, "detail": detail}
    return Response(orjson.dumps(body), status_code=status, headers=headers, media_type=PROBLEM_TYPE)


async def handle_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Problem)
    return problem_response(exc.status, exc.title, exc.code, exc.detail, exc.headers, exc.type)


def unavailable(exc: StoreUnavailable) -> Response:
    """The one 503 of a store that did not answer: the caller may retry after ``Retry-After``."""
    headers = {"Retry-After": str(exc.retry_after_s)}
    problem_type = "urn:invoice-gateway:problem:unavailable"
    return problem_response(503, "Service unavailable", "store_unavailable", exc.detail, headers, problem_type)


async def handle_store_unavailable(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StoreUnavailable)
    return unavailable(exc)


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    """A store that fails mid-request is a 503 the caller may retry; anything else is our bug, a 500."""
    if isinstance(exc, STORE_ERRORS):
        return unavailable(StoreUnavailable("a store did not answer in time"))
    log.exception("unexpected error on %s", request.url.path)
    return problem_response(500, "Internal error", "internal_error", "an unexpected error; it has been logged")


HANDLERS = {Problem: handle_problem, StoreUnavailable: handle_store_unavailable, Exception: handle_unexpected}
