"""Operations endpoints, unsigned: ``/healthz``, ``/readyz``, ``/metrics``."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway import metrics
from gateway.deps import deps


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "alive"})


async def readyz(request: Request) -> Response:
    """200 only when Redis and PostgreSQL answer in time and the process is not draining."""
    d = deps(request)
    timeout_s = d.settings.redis_timeout_ms / 1000
    checks = {
        "redis": await _answers(d.redis.ping(), timeout_s),
        "postgres": await _answers(d.pool.fetchval("SELECT 1"), d.settings.database_timeout_ms / 1000),
        "draining": request.app.state.draining,
    }
    ready = checks["redis"] and checks["postgres"] and not checks["draining"]
    return JSONResponse({"ready": ready, **checks}, status_code=200 if ready else 503)


async def _answers(call: object, timeout_s: float) -> bool:
    try:
        await asyncio.wait_for(call, timeout_s)  # type: ignore[arg-type]
    except Exception:  # any failure of the store means "not ready": the answer is the point
        return False
    return True


async def metrics_endpoint(request: Request) -> Response:
    body, content_type = metrics.exposition()
    return Response(body, media_type=content_type)
