"""Webhooks: a channel's change feed pushed to its own URL through the outbox (migration 080, workers/webhook.py,
the relay of workers/relay.py), signed with the channel's secret, at least once, in order per invoice, the same
events GET /v1/events gives; a failing endpoint is tried again, a refusing one parks the batch."""

from __future__ import annotations

import asyncio
import http.server
import random
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import asyncpg
import msgspec
import orjson
import pytest

from core.settings import Settings
from core.signing import canonical_string, signature_matches
from deploy.devstack import VENV_BIN, free_port
from gateway import schemas
from loadtest import sample
from loadtest.client import SignedClient
from workers import webhook
from workers.relay import Relay

CHANNEL, SECRET = "demo-channel-2", "demo-channel-2-secret"


class Endpoint:
    """A channel's webhook endpoint: answers each request with the next status of ``script`` (then 200), keeps
    what it received and whether each signature was good."""

    def __init__(self, script: list[int]) -> None:
        self.script, self.received, self.lock = list(script), [], threading.Lock()
        endpoint = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                canonical = canonical_string(
                    "POST", self.path, self.headers["X-Timestamp"], self.headers["X-Nonce"], body
                )
                good = signature_matches(SECRET, canonical, self.headers["X-Signature"])
                with endpoint.lock:
                    status = endpoint.script.pop(0) if endpoint.script else 200
                    endpoint.received.append((status, good, orjson.loads(body)))
                self.send_response(status)
                if status in (429, 503):
                    self.send_header("Retry-After", "0")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.port = free_port()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/prize?src=gw"

    def taken(self) -> list[dict[str, Any]]:
        with self.lock:
            return [e for status, _, body in self.received if 200 <= status < 300 for e in body["events"]]


@pytest.fixture
def endpoint(request: pytest.FixtureRequest) -> Iterator[Endpoint]:
    found = Endpoint(getattr(request, "param", []))
    found.thread.start()
    try:
        yield found
    finally:
        found.server.shutdown()
        found.server.server_close()


def set_webhook(stack: Any, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [str(VENV_BIN / "gateway"), "set-webhook", *args]
    return subprocess.run(argv, env=stack.env, capture_output=True, text=True, timeout=60)


def deliver(settings: Settings, url: str, until: Any, timeout_s: float = 60.0) -> None:
    """Step a relay of the channel's webhook (in this process) until ``until(pool)`` holds."""

    async def run() -> None:
        pool = await asyncpg.create_pool(settings.stores.database_url, min_size=1, max_size=2)
        session = aiohttp.ClientSession()
        export = settings.export
        relay = Relay(
            pool, session, export, "c", webhook.destination(CHANNEL), webhook.Webhook(CHANNEL), url=url, secret=SECRET
        )
        deadline = time.monotonic() + timeout_s
        try:
            while not await until(pool):
                assert time.monotonic() < deadline, "the webhook's events were not delivered in time"
                await asyncio.sleep(min(await relay.step(), 0.2))
        finally:
            await session.close()
            await pool.close()

    asyncio.run(run())


def pending(destination: str) -> Any:
    async def check(pool: asyncpg.Pool) -> bool:
        query = "SELECT count(*) FROM outbox WHERE destination = $1 AND delivered_at IS NULL AND parked_at IS NULL"
        return bool(await pool.fetchval(query, destination) == 0)

    return check


@pytest.mark.parametrize("endpoint", [[500, 503]], indirect=True)
def test_a_channels_events_reach_its_webhook_signed_in_order_as_the_change_feed_gives_them(
    stack: Any, settings: Settings, channel2: SignedClient, channel: SignedClient, drain: Any, endpoint: Endpoint
) -> None:
    assert set_webhook(stack, CHANNEL, endpoint.url).returncode == 0
    try:
        rng = random.Random()
        mine = [sample.invoice(rng), sample.invoice(rng, ending="998"), sample.invoice(rng, ending="997")]
        keys = {r["key"] for r in channel2.upload(mine).json()["results"]}
        other = channel.upload([sample.invoice(rng)]).json()["results"][0]["key"]  # demo-channel has no webhook
        drain()
        deliver(settings, endpoint.url, pending(webhook.destination(CHANNEL)))
    finally:
        assert set_webhook(stack, CHANNEL, "--clear").returncode == 0
    received = [e for e in endpoint.taken() if e["key"] in keys]
    assert [status for status, _, _ in endpoint.received[:2]] == [500, 503]  # tried again after each
    assert all(good for _, good, _ in endpoint.received)
    for _, _, body in endpoint.received:  # as the OpenAPI document's webhook describes it (gateway/schemas.py)
        msgspec.convert(body, schemas.Pushed)
        assert body["channel"] == CHANNEL
    assert other not in {e["key"] for e in endpoint.taken()}
    feed = []
    after = ""
    while batch := channel2.request("GET", f"/v1/events?after={after}&limit=1000").json():
        feed += [e for e in batch["events"] if e["key"] in keys]
        if not batch["events"]:
            break
        after = batch["next"]
    firsts = {e["id"]: {k: v for k, v in e.items() if k != "id"} for e in received}  # at least once: by id
    assert sorted(firsts.values(), key=lambda e: e["cursor"]) == sorted(feed, key=lambda e: e["cursor"])
    assert {e["status"] for e in feed} >= {"verified", "ineligible", "reversed", "eligible"}
    for key in keys:  # each invoice's events in order
        cursors = [e["cursor"] for e in received if e["key"] == key]
        assert cursors == sorted(cursors, key=lambda c: tuple(map(int, c.split("-"))))


@pytest.mark.parametrize("endpoint", [[410]], indirect=True)
def test_an_endpoint_that_refuses_parks_the_batch_to_be_sent_again(
    stack: Any, settings: Settings, channel2: SignedClient, drain: Any, endpoint: Endpoint, sql: Any
) -> None:
    assert set_webhook(stack, CHANNEL, endpoint.url).returncode == 0
    try:
        key = channel2.upload([sample.invoice(random.Random())]).json()["results"][0]["key"]
        drain()
        deliver(settings, endpoint.url, pending(webhook.destination(CHANNEL)))
        parked = sql(
            "SELECT parked_reason FROM outbox WHERE destination = $1 AND parked_at IS NOT NULL AND subject = $2",
            webhook.destination(CHANNEL),
            key,
        )
        assert parked and "410" in parked[0]["parked_reason"]
        resend = [
            str(VENV_BIN / "gateway-worker"),
            "outbox",
            "resend",
            "--all",
            "--destination",
            webhook.destination(CHANNEL),
        ]
        assert subprocess.run(resend, env=stack.env, capture_output=True, timeout=60).returncode == 0
        deliver(settings, endpoint.url, pending(webhook.destination(CHANNEL)))
    finally:
        assert set_webhook(stack, CHANNEL, "--clear").returncode == 0
    assert key in {e["key"] for e in endpoint.taken()}


def test_set_webhook_refuses_what_is_not_a_channel_or_a_web_url(stack: Any, sql: Any) -> None:
    assert set_webhook(stack, "demo-draw", "http://127.0.0.1:9/x").returncode == 1
    assert set_webhook(stack, CHANNEL, "ftp://example/x").returncode == 2
    assert sql("SELECT count(*) FROM webhooks WHERE channel IN ('demo-draw', $1)", CHANNEL)[0][0] == 0


def test_a_database_that_had_webhooks_before_partitions_keeps_its_trigger(settings: Settings, tmp_path: Any) -> None:
    """Main had migration 080 (webhooks) before 030 (partitions) came: 030 converts invoice_events, and 081 must
    make the webhook trigger again on the partitioned table, so that such a database still pushes its events."""
    import shutil

    from gateway.migrate import MIGRATIONS, migrate
    from tests.integration.helpers import scratch_dsn

    for path in MIGRATIONS.glob("*.sql"):
        if path.name < "030" or path.name.startswith("080"):
            shutil.copy(path, tmp_path / path.name)

    async def run() -> list[str]:
        async with scratch_dsn(settings, "webhook_upgrade") as dsn:
            await migrate(dsn, tmp_path)
            await migrate(dsn)
            conn = await asyncpg.connect(dsn)
            try:
                await conn.execute("INSERT INTO api_clients (client_id, secret, role) VALUES ('c', 's', 'channel')")
                await conn.execute("INSERT INTO webhooks (channel, url) VALUES ('c', 'http://127.0.0.1:9/')")
                await conn.execute(
                    "INSERT INTO invoice_events (key, channel, status, at) VALUES ('k', 'c', 'eligible', now())"
                )
                return [r["destination"] for r in await conn.fetch("SELECT destination FROM outbox")]
            finally:
                await conn.close()

    assert asyncio.run(run()) == ["webhook:c"]
