"""One real dev stack for the whole test session: Redis, PostgreSQL, the simulator and gunicorn, on free ports,
with fresh data under .data/test; and, for the tests that run on both (tests/topology.py), its twin on a Redis
Cluster. Workers run in burst mode inside the tests, for determinism."""

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
from deploy import devstack, rediscluster
from loadtest.client import SignedClient
from tests.privacy import leaks

ROOT = Path(__file__).resolve().parent.parent


# Tests leave entries undrained on purpose, and race dozens of requests to prove atomicity: the test stacks'
# gateways must not shed (tests/integration/test_shedding.py starts its own with tight settings).
CALM = {
    "GATEWAY_SHED_HIGH_AGE_S": "86400",
    "GATEWAY_SHED_HIGH_BACKLOG": "1000000000",
    "GATEWAY_MAX_IN_FLIGHT": "512",
    "GATEWAY_TARGET_LATENCY_MS": "0",  # a fixed limit: a slow shared machine must not lower it
}
CAMPAIGN = ROOT / "tests" / "campaigns" / "hefei-2026-sharded.toml"
CLIENTS = (*devstack.DEV_CLIENTS, ("tiny-channel", "tiny-channel-secret", "channel"))


@pytest.fixture(scope="session")
def stack() -> Iterator[Any]:
    """The session's dev stack on a single Redis."""
    data = ROOT / ".data" / "test"
    shutil.rmtree(data, ignore_errors=True)
    port = devstack.free_port
    s = devstack.Stack(
        data, redis_port=port(), pg_port=port(), sim_port=port(), port=port(), campaign=CAMPAIGN, extra_env=CALM
    )
    try:
        s.reset_metrics()
        s.start_redis()
        s.start_postgres()
        s.prepare_database(CLIENTS)
        s.start_simulator()
        s.start_gateway(processes=2)
        yield s
    finally:
        s.stop()
    _assert_no_leaks(s)


@pytest.fixture(scope="session")
def cluster_stack(stack: Any) -> Iterator[Any]:
    """The same on a Redis Cluster of 3 primaries and 3 replicas (deploy/rediscluster.py): its own gateway and
    database ("gateway_cluster"), the single stack's PostgreSQL server and simulator. Started when a test first
    asks for it (``ON_BOTH``, tests/topology.py)."""
    data = ROOT / ".data" / "test-cluster"
    shutil.rmtree(data, ignore_errors=True)
    s = devstack.Stack(
        data,
        redis_port=0,
        pg_port=stack.pg_port,
        sim_port=stack.sim_port,
        port=devstack.free_port(),
        campaign=CAMPAIGN,
        extra_env=CALM,
        cluster_ports=rediscluster.free_ports(devstack.CLUSTER_NODES),
        database="gateway_cluster",
    )
    try:
        s.reset_metrics()
        s.start_redis()
        s.create_database()
        s.prepare_database(CLIENTS)
        s.start_gateway(processes=2)
        yield s
    finally:
        s.stop()
    _assert_no_leaks(s)


def _assert_no_leaks(s: Any) -> None:
    """Every log the stack wrote, whatever the tests did to it: no secret, name or ID number."""
    secrets = [secret for _, secret, _ in devstack.DEV_CLIENTS]
    found = leaks(
        sorted(s.logs.glob("*.log")), [*secrets, s.env["GATEWAY_RECEIPT_SECRET"], s.env["GATEWAY_PERSON_SECRET"]]
    )
    assert found == [], f"personal data or secrets in the logs: {found}"


def settings_of(s: Any) -> Settings:
    env = {k: v for k, v in s.env.items() if k.startswith("GATEWAY_")}
    # Burst workers release committed keys from the in-flight hashes at once, so that tests see the
    # committed-duplicate path without waiting out the grace period.
    # Re-checks within a second, so that a drain waits for the sandbox's late answers without slowing the suite.
    return config.replace(from_env(env), inflight_grace_s=0.0, verify_recheck_s="0.2,0.4", verify_error_retries=1)


@pytest.fixture(scope="session")
def settings(stack: Any) -> Settings:
    """The single stack's settings, as the tests' own workers and commands use them."""
    return settings_of(stack)


@pytest.fixture
def topology(request: pytest.FixtureRequest) -> str:
    """ "single" (Redis), or "cluster" for a test marked ``ON_BOTH`` (tests/topology.py) in its second run."""
    return str(getattr(request, "param", "single"))


@pytest.fixture
def target_stack(request: pytest.FixtureRequest, topology: str) -> Any:
    """The stack of the test's topology: what ``base_url``, ``drain`` and ``sql`` talk to."""
    return request.getfixturevalue("cluster_stack" if topology == "cluster" else "stack")


@pytest.fixture
def target_settings(target_stack: Any, settings: Settings, topology: str) -> Settings:
    return settings if topology == "single" else settings_of(target_stack)


@pytest.fixture
def base_url(target_stack: Any) -> str:
    return f"http://127.0.0.1:{target_stack.port}"


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
def drain(target_settings: Settings) -> Any:
    """Run a worker in burst mode: process every queued entry, seal, return the entries processed."""
    from workers.cli import run_worker

    def run(timeout_s: float = 120) -> int:
        # A drain that does not end is a failure, never a hung suite.
        job = run_worker(target_settings, burst=True, handle_signals=False)
        return asyncio.run(asyncio.wait_for(job, timeout_s))

    return run


@pytest.fixture
def sql(target_settings: Settings) -> Any:
    """Run one query on the stack's PostgreSQL and return its rows."""

    def run(query: str, *args: object) -> list[asyncpg.Record]:
        async def go() -> list[asyncpg.Record]:
            conn = await asyncpg.connect(target_settings.stores.database_url)
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
