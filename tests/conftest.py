"""One real dev stack for the whole test session: Redis, PostgreSQL, the simulator and gunicorn, on free
ports, with fresh data under .data/test. Workers run in burst mode inside the tests, for determinism."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from core import settings as config
from core.settings import Settings, from_env
from deploy import devstack
from loadtest.client import SignedClient
from tests.privacy import leaks

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def stack() -> Iterator[Any]:
    data = ROOT / ".data" / "test"
    shutil.rmtree(data, ignore_errors=True)
    port = devstack.free_port
    campaign = ROOT / "tests" / "campaigns" / "hefei-2026-sharded.toml"
    # Tests leave entries undrained on purpose, and race dozens of requests to prove atomicity: this gateway
    # must not shed (tests/integration/test_shedding.py starts its own with tight settings).
    calm = {
        "GATEWAY_SHED_HIGH_AGE_S": "86400",
        "GATEWAY_SHED_HIGH_BACKLOG": "1000000000",
        "GATEWAY_MAX_IN_FLIGHT": "512",
        "GATEWAY_TARGET_LATENCY_MS": "0",  # a fixed limit: a slow shared machine must not lower it
    }
    s = devstack.Stack(
        data, redis_port=port(), pg_port=port(), sim_port=port(), port=port(), campaign=campaign, extra_env=calm
    )
    try:
        s.reset_metrics()
        s.start_redis()
        s.start_postgres()
        s.prepare_database((*devstack.DEV_CLIENTS, ("tiny-channel", "tiny-channel-secret", "channel")))
        s.start_simulator()
        s.start_gateway(processes=2)
        yield s
    finally:
        s.stop()
    # Every log the session's stack wrote, whatever the tests did to it: no secret, name or ID number.
    secrets = [secret for _, secret, _ in devstack.DEV_CLIENTS]
    found = leaks(
        sorted(s.logs.glob("*.log")), [*secrets, s.env["GATEWAY_RECEIPT_SECRET"], s.env["GATEWAY_PERSON_SECRET"]]
    )
    assert found == [], f"personal data or secrets in the logs: {found}"


@pytest.fixture(scope="session")
def settings(stack: Any) -> Settings:
    env = {k: v for k, v in stack.env.items() if k.startswith("GATEWAY_")}
    # Burst workers release committed keys from the in-flight hashes at once, so that tests see the
    # committed-duplicate path without waiting out the grace period.
    # Re-checks within a second, so that a drain waits for the sandbox's late answers without slowing the suite.
    return config.replace(from_env(env), inflight_grace_s=0.0, verify_recheck_s="0.2,0.4", verify_error_retries=1)


@pytest.fixture(scope="session")
def base_url(stack: Any) -> str:
    return f"http://127.0.0.1:{stack.port}"


def signed(base_url: str, client_id: str) -> Iterator[SignedClient]:
    with SignedClient(base_url, client_id, f"{client_id}-secret") as client:
        yield client


@pytest.fixture
def channel(base_url: str) -> Iterator[SignedClient]:
    yield from signed(base_url, "demo-channel")


@pytest.fixture
def channel2(base_url: str) -> Iterator[SignedClient]:
    yield from signed(base_url, "demo-channel-2")


@pytest.fixture
def draw(base_url: str) -> Iterator[SignedClient]:
    yield from signed(base_url, "demo-draw")


@pytest.fixture
def drain(settings: Settings) -> Any:
    """Run a worker in burst mode: process every queued entry, seal, return the entries processed."""
    from workers.cli import run_worker

    def run(timeout_s: float = 120) -> int:
        # A drain that does not end is a failure, never a hung suite.
        return asyncio.run(asyncio.wait_for(run_worker(settings, burst=True, handle_signals=False), timeout_s))

    return run


@pytest.fixture
def sql(settings: Settings) -> Any:
    """Run one query on the stack's PostgreSQL and return its rows."""

    def run(query: str, *args: object) -> list[asyncpg.Record]:
        async def go() -> list[asyncpg.Record]:
            conn = await asyncpg.connect(settings.stores.database_url)
            try:
                return list(await conn.fetch(query, *args))
            finally:
                await conn.close()

        return asyncio.run(go())

    return run


@pytest.fixture
def wait_for() -> Any:
    """``wait_for(condition, timeout_s)``: poll until true, never a fixed sleep."""
    return lambda condition, timeout_s: devstack.wait_until("condition", condition, timeout_s)
