"""What the route handlers may use, opened once per process in the app's lifespan. A handler takes what it needs
from here and hands each stage only that (the stages' parameters name their dependencies)."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
from starlette.requests import Request

from core.campaign import Campaign
from core.settings import Settings
from core.stores import RedisClient
from dedup.claim import Claimer
from gateway.clients import ClientTable
from gateway.feedwatch import FeedWatch
from gateway.receipts import Signer
from gateway.together import Together
from ratelimit.caps import Caps
from ratelimit.limits import RateLimiter
from ratelimit.shed import Admission


@dataclass(frozen=True, slots=True)
class Deps:
    settings: Settings
    campaign: Campaign
    redis: RedisClient
    pool: asyncpg.Pool
    clients: ClientTable
    claimer: Claimer
    ratelimiter: RateLimiter
    caps: Caps
    admission: Admission
    feed_watch: FeedWatch
    signer: Signer
    # The feed and status reads' pool: a streaming replica's (GATEWAY_DATABASE_READ_URL), else ``pool`` itself.
    read_pool: asyncpg.Pool
    together: Together  # an upload's limits, caps and claim in one call, where one Redis holds their keys


def deps(request: Request) -> Deps:
    found: Deps = request.state.deps
    return found
