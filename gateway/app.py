"""The gateway's one wiring function: ``create_app(settings)`` opens every client in the lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import AsyncIterator

import asyncpg
from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dedup.claim import Claimer
from gateway import campaign as campaigns
from gateway.clients import ClientTable
from gateway.deps import Deps
from gateway.errors import Problem, handle_problem, problem_response
from gateway.feed import feed
from gateway.feedwatch import FeedWatch
from gateway.middleware import Metrics, Shed
from gateway.ops import healthz, metrics_endpoint, readyz
from gateway.reversals import reverse
from gateway.review import decide, held, reversals_by_seller
from gateway.settings import Settings, SettingsError
from gateway.status import status
from gateway.stores import open_redis
from gateway.upload import upload
from ratelimit.caps import Caps
from ratelimit.limits import RateLimiter
from ratelimit.pipeline import PipelineConfig, PipelineMonitor
from ratelimit.shed import Admission, SheddingConfig

log = logging.getLogger(__name__)


def access_log() -> None:
    """One JSON line per request on stdout (gateway.access), apart from the error log on stderr."""
    logger = logging.getLogger("gateway.access")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def create_app(settings: Settings) -> Starlette:
    if len(settings.receipt_secret) < 16 or len(settings.person_secret) < 16:
        raise SettingsError("set GATEWAY_RECEIPT_SECRET and GATEWAY_PERSON_SECRET (16 characters or more)")
    campaign = campaigns.load(settings.campaign_file)
    access_log()
    admission = Admission(
        SheddingConfig(
            max_in_flight=settings.max_in_flight,
            min_in_flight=settings.min_in_flight,
            target_latency_s=settings.target_latency_ms / 1000,
            max_wait_s=settings.fair_wait_ms / 1000,
            busy_share=settings.busy_share,
            weights=campaign.shedding.weights,
            default_weight=campaign.shedding.default_weight,
        )
    )
    watch = PipelineConfig(
        high_age_s=settings.shed_high_age_s,
        low_age_s=settings.shed_low_age_s,
        high_backlog=settings.shed_high_backlog,
        low_backlog=settings.shed_low_backlog,
        processes=settings.processes,
    )
    routes = [
        Route("/v1/invoices", upload, methods=["POST"]),
        Route("/v1/invoices/{key}", status, methods=["GET"]),
        Route("/v1/reversals", reverse, methods=["POST"]),
        Route("/v1/feed", feed, methods=["GET"]),
        Route("/v1/admin/held", held, methods=["GET"]),
        Route("/v1/admin/held/{key}", decide, methods=["POST"]),
        Route("/v1/admin/reversals-by-seller", reversals_by_seller, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Deps]]:
        redis = open_redis(settings)
        pool = await asyncpg.create_pool(
            settings.database_url, min_size=1, max_size=8, command_timeout=settings.database_timeout_ms / 1000
        )
        clients = ClientTable()
        await clients.load(pool)
        feed_watch = FeedWatch()
        await feed_watch.start(settings.database_url)
        refresh = asyncio.create_task(clients.refresh_forever(pool, settings.clients_refresh_s))
        admission.known |= {c.client_id for c in clients.all() if c.role == "channel"}
        monitor = asyncio.create_task(PipelineMonitor(redis, campaign.dedup.shards, watch, admission).run_forever())
        app.state.draining = False
        try:
            claimer = Claimer(redis, pool, campaign.dedup.shards)
            ratelimiter = RateLimiter(redis, campaign.limits)
            caps = Caps(redis, campaign)
            yield {
                "deps": Deps(
                    settings, campaign, redis, pool, clients, claimer, ratelimiter, caps, admission, feed_watch
                )
            }
        finally:
            app.state.draining = True
            refresh.cancel()
            monitor.cancel()
            await feed_watch.stop()
            await pool.close()
            await redis.aclose()

    return Starlette(
        routes=routes,
        middleware=[Middleware(Shed, admission=admission), Middleware(Metrics, routes=routes)],
        exception_handlers={Problem: handle_problem, Exception: handle_unexpected},
        lifespan=lifespan,
    )


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    """A store that fails mid-request is a 503 the caller may retry; anything else is our bug, a 500."""
    if isinstance(exc, RedisError | OSError | asyncpg.PostgresError | asyncpg.InterfaceError | TimeoutError):
        return problem_response(
            503, "Service unavailable", "store_unavailable", "a store did not answer in time", {"Retry-After": "1"}
        )
    log.exception("unexpected error on %s", request.url.path)
    return problem_response(500, "Internal error", "internal_error", "an unexpected error; it has been logged")
