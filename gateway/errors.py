"""One error, ``Problem``, raised with a code of gateway/codes.py and answered as RFC 9457 problem+json in one
place, with the request's id (``request_id``, also in ``X-Request-Id``).

A store's failure anywhere below a route is ``core.errors.StoreUnavailable`` (or one of ``STORE_ERRORS`` that
nobody converted): both are answered here, 503 ``store_unavailable`` with ``Retry-After``. A path or method the
gateway does not serve is 404 ``not_found`` or 405 ``method_not_allowed``. Anything else unexpected is our bug:
500 ``internal_error``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import asyncpg
import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from core.errors import STORE_ERRORS, StoreUnavailable
from gateway import codes
from gateway.codes import Code

PROBLEM_TYPE = "application/problem+json"
log = logging.getLogger(__name__)


class Problem(Exception):
    """An answer other than success: its code (status, title and type with it), a detail for the caller, and
    headers (``Retry-After``, ``RateLimit``...)."""

    def __init__(self, code: Code, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.headers = headers or {}


def problem_body(code: Code, detail: str, request_id: str | None) -> bytes:
    """The problem+json document of ``code``."""
    body = {"type": code.type, "title": code.title, "status": code.status, "code": code.name, "detail": detail}
    if request_id is not None:
        body["request_id"] = request_id
    return orjson.dumps(body)


def problem_response(request: Request, code: Code, detail: str, headers: Mapping[str, str] | None = None) -> Response:
    request_id = getattr(request.state, "request_id", None)
    body = problem_body(code, detail, request_id)
    return Response(body, status_code=code.status, headers=headers, media_type=PROBLEM_TYPE)


async def handle_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Problem)
    return problem_response(request, exc.code, exc.detail, exc.headers)


def unavailable(request: Request, exc: StoreUnavailable) -> Response:
    """The one 503 of a store that did not answer: the caller may retry after ``Retry-After``."""
    headers = {"Retry-After": str(exc.retry_after_s)}
    return problem_response(request, codes.STORE_UNAVAILABLE, exc.detail, headers)


async def handle_store_unavailable(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StoreUnavailable)
    return unavailable(request, exc)


async def handle_http(request: Request, exc: Exception) -> Response:
    """Starlette's own refusals (no route, wrong method) as problems like every other answer."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        return problem_response(request, codes.METHOD_NOT_ALLOWED, "see Allow", exc.headers)
    return problem_response(request, codes.NOT_FOUND, f"nothing at {request.url.path}", exc.headers)


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    """A store that fails mid-request is a 503 the caller may retry; anything else is our bug, a 500."""
    if isinstance(exc, asyncpg.CharacterNotInRepertoireError):
        # A NUL (U+0000) in a text PostgreSQL was given: no retry helps. The routes refuse the ones the fuzzing
        # found (tests/e2e/test_fuzz.py); this catches any other.
        code = codes.MALFORMED_BODY if request.method == "POST" else codes.BAD_PARAMETER
        return problem_response(request, code, "a text holds a NUL character (U+0000), which no field takes")
    if isinstance(exc, STORE_ERRORS):
        return unavailable(request, StoreUnavailable("a store did not answer in time"))
    log.exception("unexpected error on %s", request.url.path)
    return problem_response(request, codes.INTERNAL_ERROR, "an unexpected error; it has been logged")


HANDLERS = {
    Problem: handle_problem,
    StoreUnavailable: handle_store_unavailable,
    HTTPException: handle_http,
    Exception: handle_unexpected,
}
