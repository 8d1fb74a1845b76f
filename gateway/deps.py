"""What a request handler may use, opened once per process in the app's lifespan."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
from redis.asyncio import Redis
from starlette.requests import Request

from dedup.claim import Claimer
from gateway.campaign import Campaign
from gateway.clients import ClientTable
from gateway.feedwatch import FeedWatch
from gateway.settings import Settings
from ratelimit.caps import Caps
from ratelimit.limits import RateLimiter
from ratelimit.shed import Admission


@dataclass(frozen=True, slots=True)
class Deps:
    settings: Settings
    campaign: Campaign
    redis: Redis
    pool: asyncpg.Pool
    clients: ClientTable
    claimer: Claimer
    ratelimiter: RateLimiter
    caps: Caps
    admission: Admission
    feed_watch: FeedWatch


def deps(request: Request) -> Deps:
    found: Deps = request.state.deps
    return found
