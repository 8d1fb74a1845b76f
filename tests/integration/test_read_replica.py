"""Feed and status reads on a real streaming replica (GATEWAY_DATABASE_READ_URL), started by the test from the
stack's PostgreSQL with pg_basebackup; a channel's own write is read back from the primary while the replica
has not replayed it (its replay paused here, so that the lag is certain)."""

from __future__ import annotations

import asyncio
import random
import shutil
import signal
from collections.abc import Iterator
from typing import Any

import asyncpg
import httpx
import pytest

from deploy import devstack
from loadtest import sample
from loadtest.client import SignedClient
from tests.conftest import ROOT
from tests.integration.test_reversals import entries_for, red, reverse


@pytest.fixture(scope="module")
def replica_reads(stack: Any) -> Iterator[tuple[str, str]]:
    """A gateway on the session stack reading its feed and statuses from a replica: its URL, and the replica's."""
    replica = devstack.Stack(
        ROOT / ".data" / "test-replica", redis_port=0, pg_port=devstack.free_port(), sim_port=0, port=0
    )
    shutil.rmtree(replica.data, ignore_errors=True)
    port = devstack.free_port()
    try:
        replica.start_postgres(replica_of=stack.pg_port)
        read_url = f"postgresql://gateway@127.0.0.1:{replica.pg_port}/{stack.database}"
        env = {"GATEWAY_DATABASE_READ_URL": read_url}
        gateway = stack.start_gateway(processes=1, port=port, env=env, name="gateway-replica-reads")
        try:
            yield f"http://127.0.0.1:{port}", read_url
        finally:
            gateway.send_signal(signal.SIGTERM)
            gateway.wait(30)
    finally:
        replica.stop()


def on_replica(url: str, query: str) -> Any:
    async def run() -> Any:
        conn = await asyncpg.connect(url)
        try:
            return await conn.fetchval(query)
        finally:
            await conn.close()

    return asyncio.run(run())


def status_reads(base_url: str) -> dict[str, float]:
    """gateway_database_reads_total of the status route, by server (every gateway process of the folder)."""
    found = {"primary": 0.0, "replica": 0.0}
    for line in httpx.get(f"{base_url}/metrics").text.splitlines():
        for server in found:
            if line.startswith(f'gateway_database_reads_total{{route="status",server="{server}"}}'):
                found[server] = float(line.rsplit(" ", 1)[1])
    return found


def test_feed_and_status_read_the_replica_and_a_channels_own_write_is_read_from_the_primary(
    replica_reads: tuple[str, str], draw: SignedClient, drain: Any, wait_for: Any
) -> None:
    base_url, read_url = replica_reads
    assert on_replica(read_url, "SELECT pg_is_in_recovery()") is True
    inv = sample.invoice(random.Random())
    with (
        SignedClient(base_url, "demo-channel", "demo-channel-secret") as channel,
        SignedClient(base_url, "demo-draw", "demo-draw-secret") as replica_draw,
    ):
        key = channel.upload([inv]).json()["results"][0]["key"]
        drain()
        wait_for(lambda: entries_for(replica_draw, key) == ["add"], 30)  # sealed, replayed, read there
        on_replica(read_url, "SELECT pg_wal_replay_pause()")
        try:
            before = status_reads(base_url)
            assert reverse(channel, red(inv["number"])).json()["results"][0]["status"] == "reversed"
            assert channel.status(key).json()["status"] == "reversed"  # its own write: from the primary
            after = status_reads(base_url)
            assert (after["primary"] - before["primary"], after["replica"] - before["replica"]) == (1, 0)
            drain()  # seals the void entry on the primary
            assert entries_for(draw, key) == ["add", "void"]  # the primary's gateway has it
            assert entries_for(replica_draw, key) == ["add"]  # the replica has not replayed it
        finally:
            on_replica(read_url, "SELECT pg_wal_replay_resume()")
        wait_for(lambda: entries_for(replica_draw, key) == ["add", "void"], 30)
        # Replayed: the replica answers the channel's status reads again.
        wait_for(lambda: _read_there(channel, key, base_url, after["replica"]), 30)


def _read_there(channel: SignedClient, key: str, base_url: str, replica_reads_before: float) -> bool:
    assert channel.status(key).json()["status"] == "reversed"
    return status_reads(base_url)["replica"] > replica_reads_before
