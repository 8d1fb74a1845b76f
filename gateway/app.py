"""The gateway's one wiring function: ``create_app(settings)`` opens every client in the lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator

import asyncpg
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route

from core import campaign as campaigns
from core import person_key
from core.acks import Acks
from core.metrics import keep, start_flushing
from core.settings import ConfigError, Settings
from core.stores import open_pool, open_redis
from dedup import metrics as dedup_metrics
from dedup.claim import Claimer
from gateway import accesslog, apidocs, draws, prize_routes, receipt_keys
from gateway import metrics as gateway_metrics
from gateway.awards import award
from gateway.clients import ClientTable
from gateway.console import routes as console
from gateway.console.environment import environment
from gateway.deps import Deps
from gateway.errors import HANDLERS
from gateway.events import events
from gateway.feed import feed
from gateway.feedwatch import CLIENTS, FeedWatch
from gateway.listing import invoices_of_user
from gateway.middleware import Direct, Metrics, Shed
from gateway.ops import healthz, metrics_endpoint, readyz
from gateway.receipts import Signer, load_signer, register
from gateway.reports import daily, prize_ledger_report, reconciliation
from gateway.reversals import reverse
from gateway.review import decide, held, reversals_by_seller
from gateway.status import status
from gateway.together import Together
from gateway.upload import upload
from ratelimit import metrics as shed_metrics
from ratelimit.caps import Caps
from ratelimit.limits import RateLimiter
from ratelimit.pipeline import PipelineConfig, PipelineMonitor
from ratelimit.shed import Admission, SheddingConfig

log = logging.getLogger(__name__)
POOL_SIZE = 8  # PostgreSQL connections per gateway process


def check(settings: Settings) -> Signer:
    """What the gateway refuses to start without (``ConfigError``): its keys and a sound campaign. Returns the
    receipts' signer."""
    secrets = settings.secrets
    if len(secrets.person_secret) < 16:
        raise ConfigError("GATEWAY_PERSON_SECRET", "", "16 characters or more (the gateway's own key)")
    if 0 < len(secrets.receipt_secret) < 16:
        raise ConfigError(
            "GATEWAY_RECEIPT_SECRET", "", "16 characters or more, or none (it only verifies old receipts)"
        )
    if 0 < len(settings.console.secret) < 16:
        raise ConfigError("GATEWAY_CONSOLE_SECRET", "", "16 characters or more, or none (the console is off)")
    signer = load_signer(secrets)
    campaigns.load(settings.campaign_file)
    return signer


def _reload(clients: ClientTable, pool: asyncpg.Pool, tasks: set[asyncio.Task[None]]) -> None:
    """The client table changed (a client added, a secret rotated or replaced): reload this process's copy now."""
    task = asyncio.create_task(clients.reload(pool))
    tasks.add(task)  # held until done: the loop keeps only a weak reference
    task.add_done_callback(tasks.discard)


def create_app(settings: Settings) -> Starlette:
    signer = check(settings)
    campaign = campaigns.load(settings.campaign_file)
    admission = Admission(SheddingConfig.of(settings.shed, campaign.shedding))
    routes = [
        Route("/v1/invoices", upload, methods=["POST"]),
        Route("/v1/invoices", invoices_of_user, methods=["GET"]),
        Route("/v1/invoices/{key}", status, methods=["GET"]),
        Route("/v1/reversals", reverse, methods=["POST"]),
        Route("/v1/feed", feed, methods=["GET"]),
        Route("/v1/events", events, methods=["GET"]),
        Route("/v1/keys", receipt_keys.public_keys, methods=["GET"]),
        Route("/v1/receipts/verify", receipt_keys.verify_receipt, methods=["POST"]),
        Route("/v1/prizes", prize_routes.list_prizes, methods=["GET"]),
        Route("/v1/prizes/{prize_id}/paid", prize_routes.paid, methods=["POST"]),
        Route("/v1/draws", draws.commit, methods=["POST"]),
        Route("/v1/draws/{draw_id}", draws.read, methods=["GET"]),
        Route("/v1/draws/{draw_id}/awards", award, methods=["POST"]),
        Route("/v1/draws/{draw_id}/result", draws.publish, methods=["POST"]),
        Route("/v1/admin/held", held, methods=["GET"]),
        Route("/v1/admin/held/{key}", decide, methods=["POST"]),
        Route("/v1/admin/reversals-by-seller", reversals_by_seller, methods=["GET"]),
        Route("/v1/admin/reconciliation", reconciliation, methods=["GET"]),
        Route("/v1/admin/prize-ledger", prize_ledger_report, methods=["GET"]),
        Route("/v1/reports/daily", daily, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        Route("/openapi.json", apidocs.openapi_json, methods=["GET"]),
        Route("/docs", apidocs.docs_page, methods=["GET"]),
        Route("/docs/static/redoc.standalone.js", apidocs.redoc_script, methods=["GET"]),
        Route("/docs/static/logo-mini.svg", apidocs.redoc_logo, methods=["GET"]),
        *console.routes(),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Deps]]:
        redis = open_redis(settings.stores)
        pool = await open_pool(settings.stores, POOL_SIZE, timed=True)
        replica = bool(settings.stores.database_read_url)
        read_pool = await open_pool(settings.stores, POOL_SIZE, timed=True, read=True) if replica else pool
        clients = ClientTable()
        await clients.load(pool)
        await register(pool, signer)
        await person_key.check(pool, campaign.id, settings.secrets.person_secret)
        feed_watch = FeedWatch()
        reloading: set[asyncio.Task[None]] = set()
        await feed_watch.start(settings.stores.database_url, {CLIENTS: lambda: _reload(clients, pool, reloading)})
        refresh = asyncio.create_task(clients.refresh_forever(pool, settings.api.clients_refresh_s))
        # The unlabelled metrics every upload moves: their updates are kept in the process and written each
        # second (core/metrics.py), as the labelled ones of gateway/middleware.py and gateway/upload.py are.
        for hot in (gateway_metrics.READING_BODY, shed_metrics.IN_FLIGHT, dedup_metrics.CHECKED):
            keep(hot)
        stop_flushing = start_flushing()
        admission.known |= {c.client_id for c in clients.all() if c.role == "channel"}
        monitor = PipelineMonitor(redis, campaign.dedup.shards, PipelineConfig.of(settings.shed), admission)
        watching = asyncio.create_task(monitor.run_forever())
        app.state.draining = False
        ratelimiter, caps = RateLimiter(redis, campaign.limits), Caps(redis, campaign)
        together = Together(redis, ratelimiter, caps)
        # What the process has made by now lives as long as it does: the cyclic collector need not walk it again.
        # Walked, a full collection in a loaded gateway process took a median of 77 to 91 ms, up to 204 (about
        # 80,000 objects), and held every request of the process that long (benchmarks/README.md, "The cyclic
        # collector").
        gc.freeze()
        try:
            yield {
                "deps": Deps(
                    settings,
                    campaign,
                    redis,
                    pool,
                    clients,
                    Claimer(redis, pool, campaign.dedup.shards, Acks.of(settings.stores)),
                    ratelimiter,
                    caps,
                    admission,
                    feed_watch,
                    signer,
                    read_pool,
                    together,
                )
            }
        finally:
            app.state.draining = True
            refresh.cancel()
            watching.cancel()
            stop_flushing()
            await feed_watch.stop()
            if read_pool is not pool:
                await read_pool.close()
            await pool.close()
            await together.aclose()
            await redis.aclose()
            accesslog.LOG.flush()

    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(
                Shed,
                admission=admission,
                max_body_bytes=settings.api.max_body_bytes,
                body_timeout_s=settings.http.body_timeout_s,
            ),
            Middleware(Metrics, routes=routes),
            Middleware(Direct, endpoints={("POST", "/v1/invoices"): upload}, handlers=HANDLERS),
        ],
        exception_handlers=HANDLERS,
        lifespan=lifespan,
    )
    app.state.settings = settings  # the gunicorn worker reads its drain delay here (gateway/server.py)
    app.state.console_templates = environment(campaign.caps.timezone)
    return app
