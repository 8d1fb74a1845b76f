"""kill -9 of workers at any moment, under load: nothing accepted is lost, nothing is doubled."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import threading
import time
from typing import Any

from loadtest import sample
from loadtest.client import SignedClient
from tests.integration.test_pipeline import read_whole_feed, recompute_chain
from tests.topology import ON_BOTH

FAST = {
    "GATEWAY_VERIFY_RECHECK_S": "0.2,0.4",
    "GATEWAY_VERIFY_ERROR_RETRIES": "1",
    "GATEWAY_WORKER_BATCH": "10",
    "GATEWAY_SEAL_INTERVAL_MS": "100",
    "GATEWAY_WORKER_CLAIM_IDLE_MS": "1000",
    "GATEWAY_RECHECK_LEASE_S": "1",
}


@ON_BOTH
def test_kill_9_of_workers_under_load_loses_nothing_and_doubles_nothing(
    target_stack: Any, base_url: str, draw: SignedClient, sql: Any, drain: Any, wait_for: Any
) -> None:
    from deploy.devstack import VENV_BIN

    stack = target_stack

    drain()
    rng = random.Random(9)
    workers: list[subprocess.Popen[bytes]] = []

    def start_worker() -> None:
        workers.append(
            stack._spawn(f"crash-worker-{len(workers)}", [str(VENV_BIN / "gateway-worker"), "run"], env=FAST)
        )

    start_worker()
    start_worker()
    accepted: list[str] = []
    endings = [None] * 16 + ["999", "996", "995", "997"]

    def upload() -> None:
        with SignedClient(base_url, "demo-channel", "demo-channel-secret") as channel:
            for _ in range(40):
                batch = [sample.invoice(rng, ending=rng.choice(endings)) for _ in range(20)]
                results = channel.upload(batch).json()["results"]
                accepted.extend(r["key"] for r in results if r["status"] == "accepted")

    uploader = threading.Thread(target=upload)
    uploader.start()
    kills = 0
    while uploader.is_alive() or kills < 8:
        time.sleep(random.uniform(0.2, 0.6))
        live = [w for w in workers if w.poll() is None]
        os.kill(random.choice(live).pid, signal.SIGKILL)
        kills += 1
        start_worker()
    uploader.join()
    try:
        try:
            wait_for(lambda: _all_final(sql, accepted), 180)
        except TimeoutError:
            print(_where_they_are(stack, sql, accepted))
            raise
    finally:
        for w in workers:
            if w.poll() is None:
                w.send_signal(signal.SIGTERM)
        for w in workers:
            w.wait(20)

    assert len(accepted) > 600 and kills >= 8
    rows = sql("SELECT key, status FROM invoices WHERE key = ANY($1)", accepted)
    assert len(rows) == len(accepted)  # nothing lost (the primary key forbids doubles)
    eligible = {r["key"] for r in rows if r["status"] == "eligible"}
    assert {r["status"] for r in rows} <= {"eligible", "ineligible", "reversed"}
    events = sql(
        "SELECT key, count(*) AS n FROM invoice_events WHERE key = ANY($1) AND status = 'accepted' GROUP BY key",
        accepted,
    )
    assert {r["n"] for r in events} == {1} and len(events) == len(accepted)  # no doubled history
    batches = read_whole_feed(draw)
    recompute_chain(batches)
    adds = [e["key"] for b in batches for e in b["entries"] if e["kind"] == "add" and e["key"] in set(accepted)]
    assert len(adds) == len(set(adds)) and set(adds) == eligible  # each eligible key fed exactly once


def _all_final(sql: Any, keys: list[str]) -> bool:
    rows = sql(
        "SELECT count(*) FILTER (WHERE status IN ('eligible', 'ineligible', 'reversed')) AS done"
        " FROM invoices WHERE key = ANY($1)",
        keys,
    )
    return bool(rows[0]["done"] == len(keys))


def _where_they_are(stack: Any, sql: Any, accepted: list[str]) -> str:
    """On a timeout: statuses in PostgreSQL, and what waits in Redis, shard by shard."""
    import asyncio

    from core import keys
    from core.settings import from_env
    from core.stores import open_redis

    async def look() -> list[str]:
        redis = open_redis(from_env({k: v for k, v in stack.env.items() if k.startswith("GATEWAY_")}).stores)
        try:
            return [
                f"shard {s}: stream {await redis.xlen(keys.stream(s))}, "
                f"pending {(await redis.xpending(keys.stream(s), keys.GROUP))['pending']}, "
                f"re-checks {await redis.zcard(keys.recheck(s))}, dead {await redis.xlen(keys.dead_letters(s))}"
                for s in range(4)
            ]
        finally:
            await redis.aclose()

    statuses = sql("SELECT status, count(*) AS n FROM invoices WHERE key = ANY($1) GROUP BY status", accepted)
    counts = {r["status"]: r["n"] for r in statuses}
    return "\n".join([f"accepted {len(accepted)}, committed {counts}", *asyncio.run(look())])
