"""Pure ASGI middleware: request metrics per route template and status."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.metrics import keep
from gateway import accesslog, codes, metrics
from gateway.errors import problem_body
from ratelimit import metrics as shed_metrics
from ratelimit.shed import Admission


class Metrics:
    """Counts each HTTP request by route template (never the raw path) and status, and times it; writes one
    JSON access-log line per request with its request id (also in the response's ``X-Request-Id``); adds the
    RateLimit headers of an admitted channel request to its answer, whatever it is.

    The line holds the route template, never the raw path or query, and no header but the client id: no
    invoice key, signature, name or ID number reaches the logs."""

    def __init__(self, app: ASGIApp, routes: list[BaseRoute]) -> None:
        self.app = app
        self.routes = routes
        # Labelled children, looked up once (a histogram's labels() cost 6 µs a request): routes and statuses
        # are few. Their updates are kept in the process and written each second (core/metrics.py).
        self.requests: dict[tuple[str, int], Any] = {}
        self.latency: dict[str, Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = self._template(scope)
        status = 500
        started = time.perf_counter()
        request_id = os.urandom(12).hex()
        state = scope.setdefault("state", {})
        state["request_id"] = request_id

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                stamped = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
                # A channel's admitted request: its RateLimit headers on whatever the answer is (gateway/admit.py).
                stamped += [(k.lower().encode(), v.encode()) for k, v in state.get("ratelimit", {}).items()]
                message["headers"] = stamped
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            took = time.perf_counter() - started
            counter = self.requests.get((route, status))
            if counter is None:
                counter = self.requests[(route, status)] = keep(metrics.REQUESTS.labels(route, str(status)))
            counter.inc()
            histogram = self.latency.get(route)
            if histogram is None:
                histogram = self.latency[route] = keep(metrics.LATENCY.labels(route))
            histogram.observe(took)
            if route != "/metrics":
                accesslog.LOG.line(
                    {
                        "request_id": request_id,
                        "method": scope["method"],
                        "route": route,
                        "status": status,
                        "ms": round(took * 1000, 2),
                        "client": _header(scope, b"x-client-id")[:64],
                    }
                )

    def _template(self, scope: Scope) -> str:
        return _template(self.routes, scope)


class Shed:
    """Refuses a /v1 request with a fast 503 before its body is read when ``admission`` says so; otherwise reads
    its body first (within ``body_timeout_s``, else 408; no further than ``max_body_bytes``, past which the
    route answers 413), and only then counts it in flight for its channel: a request whose body is still coming
    holds no slot, so sockets that send headers and then trickle a body cannot take an honest channel's slots
    (the connections themselves are bounded by gateway/connections.py). Each request's latency, once admitted,
    adapts the concurrency limit (not a feed long poll's). A channel's change feed (``/v1/events``) is refused
    like any request but holds no slot. A request of a channel under its share may wait briefly for a slot
    (``Admission.wait``). Operations endpoints are never shed. Outermost, answering with two small messages and
    no log line: under overload the refusals must cost next to nothing."""

    def __init__(self, app: ASGIApp, admission: Admission, max_body_bytes: int, body_timeout_s: float) -> None:
        self.app = app
        self.admission = admission
        self.max_body_bytes = max_body_bytes
        self.body_timeout_s = body_timeout_s
        self.counters: dict[tuple[str, str], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        channel = _header(scope, b"x-client-id")[:64]
        reason = self.admission.refusal(channel)
        if reason is None and scope["path"] == "/v1/events":
            # A channel's change feed waits on others' work, for every channel at once: it is refused when the
            # process sheds, but holds no slot while it waits (a slot per channel would cut what uploads get).
            await self.app(scope, receive, send)
            return
        if reason is not None and not (reason == "in_flight" and self.admission.may_wait(channel)):
            await self._refuse(reason, channel, send)
            return
        try:
            with metrics.READING_BODY.track_inprogress():
                body = await read_body(scope, receive, self.max_body_bytes, self.body_timeout_s)
        except TimeoutError:
            await _send_timeout(send, self.body_timeout_s)
            return
        except Gone:
            return  # nobody to answer
        if not await self._admit(channel):
            await self._refuse("in_flight", channel, send)
            return
        started = time.perf_counter()
        try:
            await self.app(scope, receive if body is None else replay(body, receive), send)
        finally:
            long_poll = scope["path"].startswith("/v1/feed")
            self.admission.leave(channel, None if long_poll else time.perf_counter() - started)

    async def _admit(self, channel: str) -> bool:
        """Take a slot for a request whose body is in: at once, or after a short wait when its channel is under
        its share. False: refused."""
        reason = self.admission.refusal(channel)
        if reason is None:
            self.admission.enter(channel)
            return True
        return reason == "in_flight" and self.admission.may_wait(channel) and await self.admission.wait(channel)

    async def _refuse(self, reason: str, channel: str, send: Send) -> None:
        self._counter(reason, channel).inc()
        start, body = _shed_messages(reason)
        await send(start)
        await send(body)

    def _counter(self, reason: str, channel: str) -> Any:
        label = channel if channel in self.admission.known else "other"
        found = self.counters.get((reason, label))
        if found is None:
            found = self.counters[(reason, label)] = shed_metrics.SHED.labels(reason, label)
        return found


Endpoint = Callable[[Request], Awaitable[Response]]
Handler = Callable[[Request, Exception], Awaitable[Response]]


class Direct:
    """The routes nearly every request takes (an upload), called without Starlette's exception middleware, router,
    route and request-response wrappers: six layers of coroutines and two of send wrappers, which a
    single-invoice upload pays for nothing (it has no path parameters, and answers once, at its end). Innermost of
    the middleware, so the shedding, the metrics and the access log see it as before. An exception of a class in
    ``handlers`` is answered by its handler, looked up by the exception's classes, most derived first, as
    Starlette's exception middleware does; any other (the handler of ``Exception``) goes on to Starlette's
    ServerErrorMiddleware as before. A request under a root path goes through Starlette's router."""

    def __init__(self, app: ASGIApp, endpoints: Mapping[tuple[str, str], Endpoint], handlers: Mapping[Any, Handler]):
        self.app = app
        self.endpoints = dict(endpoints)  # (method, path): endpoint
        self.handlers = {cls: h for cls, h in handlers.items() if cls is not Exception}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = None
        if scope["type"] == "http" and not scope.get("root_path"):
            endpoint = self.endpoints.get((scope["method"], scope["path"]))
        if endpoint is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive, send)
        try:
            response = await endpoint(request)
        except Exception as exc:
            handler = self._handler(exc)
            if handler is None:
                raise
            response = await handler(request, exc)
        await response(scope, receive, send)

    def _handler(self, exc: Exception) -> Handler | None:
        for cls in type(exc).__mro__:
            found = self.handlers.get(cls)
            if found is not None:
                return found
        return None


class Gone(Exception):
    """The client went away before its body was in."""


async def read_body(scope: Scope, receive: Receive, limit: int, timeout_s: float) -> bytes | None:
    """The body, read within ``timeout_s`` (else TimeoutError), and no further than just past ``limit`` (the
    route then answers 413). None: not read at all, its declared length being over the limit or no number (the
    route refuses it from its headers). Raises Gone when the client goes away."""
    declared = _header(scope, b"content-length")
    if declared and not (declared.isascii() and declared.isdigit() and len(declared) <= 19 and int(declared) <= limit):
        return None
    chunks: list[bytes] = []
    size = 0
    async with asyncio.timeout(timeout_s):
        while True:
            message = await receive()
            if message["type"] != "http.request":
                raise Gone
            chunk = message.get("body", b"")
            chunks.append(chunk)
            size += len(chunk)
            if not message.get("more_body", False) or size > limit:
                return b"".join(chunks)


def replay(body: bytes, receive: Receive) -> Receive:
    """``receive`` that hands the route the body read before, then whatever the connection says next."""
    given = False

    async def again() -> Message:
        nonlocal given
        if given:
            return await receive()
        given = True
        return {"type": "http.request", "body": body, "more_body": False}

    return again


async def _send_timeout(send: Send, timeout_s: float) -> None:
    request_id = os.urandom(12).hex()
    detail = f"the body did not arrive within {timeout_s:g} s"
    body = problem_body(codes.REQUEST_TIMEOUT, detail, request_id)
    await send(
        {
            "type": "http.response.start",
            "status": 408,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
                (b"x-request-id", request_id.encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _shed_messages(reason: str) -> tuple[Message, Message]:
    """The two ASGI messages of a refusal, with a request id of its own (not logged: a refusal must stay cheap)."""
    request_id = os.urandom(12).hex()
    body = problem_body(codes.OVERLOADED, f"the gateway is shedding load ({reason}); retry later", request_id)
    start = {
        "type": "http.response.start",
        "status": 503,
        "headers": [
            (b"content-type", b"application/problem+json"),
            (b"retry-after", b"1"),
            (b"content-length", str(len(body)).encode()),
            (b"x-request-id", request_id.encode()),
        ],
    }
    return start, {"type": "http.response.body", "body": body}


def _template(routes: list[BaseRoute], scope: Scope, prefix: str = "") -> str:
    """The template of the route that serves ``scope``: a mounted route's is its mount's path and its own
    (``/console/cases/{case}``); "other" for a path nothing serves."""
    for route in routes:
        match, child = route.matches(scope)
        if match is not Match.FULL:
            continue
        if isinstance(route, Mount):
            return _template(route.routes, {**scope, **child}, prefix + route.path)
        if isinstance(route, Route):
            return prefix + route.path
    return "other"


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return ""
