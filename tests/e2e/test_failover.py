"""SIGKILL of a Redis Cluster primary while two channels upload and workers run: its replica takes over, the
gateway follows the new slot map, requests in the gap are answered 503 with Retry-After (never 500), and every
invoice a channel was promised (``accepted``, or its own receipt again on a retry) reaches exactly one final
status, each eligible key fed once.

While the promoted replica has no replica of its own (until the killed node comes back and follows it), uploads
to its shards are answered 503: an ``accepted`` waits for one replica's acknowledgement (deploy/README.md,
"Durability")."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import threading
from typing import Any

from core import keys
from deploy import rediscluster
from loadtest import sample
from loadtest.client import SignedClient
from tests.e2e.test_crash import FAST, _all_final
from tests.integration.test_pipeline import read_whole_feed, recompute_chain
from tests.topology import ON_CLUSTER

OK = (200, 202)  # every invoice answered (202: some still to be verified)
CHANNELS = (("demo-channel", "demo-channel-secret"), ("demo-channel-2", "demo-channel-2-secret"))


class Uploads:
    """Two channels uploading 20-invoice requests until told to stop: what each was promised, what was refused."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.promised: set[str] = set()
        self.refused: list[tuple[str, str, list[dict[str, Any]]]] = []  # (channel, secret, batch) answered 503
        self.statuses: list[int] = []
        self.no_retry_after = 0
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [
            threading.Thread(target=self._run, args=(c, s, random.Random(i))) for i, (c, s) in enumerate(CHANNELS)
        ]

    def _run(self, channel_id: str, secret: str, rng: random.Random) -> None:
        endings = [None] * 16 + ["999", "996", "995", "997"]
        with SignedClient(self.base_url, channel_id, secret) as channel:
            while not self.stop.is_set():
                batch = [sample.invoice(rng, ending=rng.choice(endings)) for _ in range(20)]
                answer = channel.upload(batch)
                with self.lock:
                    self.statuses.append(answer.status_code)
                    if answer.status_code == 503:
                        self.refused.append((channel_id, secret, batch))
                        self.no_retry_after += "retry-after" not in answer.headers
                    elif answer.status_code in OK:
                        self.promised.update(promised(answer.json()["results"]))

    def __enter__(self) -> Uploads:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(60)

    def count(self) -> int:
        with self.lock:
            return len(self.promised)


def promised(results: list[dict[str, Any]]) -> list[str]:
    """The keys an answer promises: accepted, or a duplicate of the channel's own upload (with its receipt)."""
    return [r["key"] for r in results if r["status"] == "accepted" or "receipt" in r]


@ON_CLUSTER
def test_sigkill_of_a_primary_under_load_loses_nothing_and_doubles_nothing(
    target_stack: Any, base_url: str, draw: SignedClient, sql: Any, wait_for: Any
) -> None:
    stack = target_stack
    ports = stack.cluster_ports
    slot = rediscluster.key_slot(ports[0], keys.stream(0))
    victim = rediscluster.primary_of(ports[0], slot).port
    workers = start_workers(stack, "failover")
    with Uploads(base_url) as uploads:
        # Workers busy too: the kill hits their reads and acknowledgements, not only the uploads.
        wait_for(lambda: committed(sql, uploads) > 100, 120)
        os.kill(_process(stack, victim).pid, signal.SIGKILL)
        others = [p for p in ports if p != victim]
        wait_for(lambda: _promoted(others[0], slot, victim), 60)  # its replica has taken over
        stack.start_redis_node(victim)  # comes back as the new primary's replica
        wait_for(lambda: rediscluster.healthy(ports), 60)
        since = uploads.count()
        wait_for(lambda: uploads.count() > since + 200, 120)

    assert uploads.refused  # the gap was answered 503 (with Retry-After: promises_kept)
    promises_kept(uploads, workers, base_url, sql, draw, wait_for)


def start_workers(stack: Any, name: str) -> list[subprocess.Popen[bytes]]:
    """Two workers that run until stopped, re-checks and idle take-overs sped up."""
    from deploy.devstack import VENV_BIN

    return [stack._spawn(f"{name}-worker-{i}", [str(VENV_BIN / "gateway-worker"), "run"], env=FAST) for i in range(2)]


def promises_kept(
    uploads: Uploads, workers: list[subprocess.Popen[bytes]], base_url: str, sql: Any, draw: SignedClient, wait_for: Any
) -> None:
    """Only 2xx and 503 with Retry-After were answered; the 503'd uploads, sent again, are taken as their channel's
    own; every invoice promised reaches one final status with one accepted event, each eligible key fed once; and
    the workers outlived it all."""
    assert set(uploads.statuses) <= {*OK, 503}, set(uploads.statuses)
    assert uploads.no_retry_after == 0
    retried = _retry(base_url, uploads.refused)
    promised_keys = uploads.promised | retried
    try:
        wait_for(lambda: _all_final(sql, sorted(promised_keys)), 180)
    finally:
        _stop(workers)
    assert all(w.returncode in (0, -signal.SIGTERM) for w in workers)  # no worker died of it
    rows = sql("SELECT key, status FROM invoices WHERE key = ANY($1)", sorted(promised_keys))
    assert len(rows) == len(promised_keys)  # nothing promised is lost
    events = sql(
        "SELECT key, count(*) AS n FROM invoice_events WHERE key = ANY($1) AND status = 'accepted' GROUP BY key",
        sorted(promised_keys),
    )
    assert {r["n"] for r in events} == {1} and len(events) == len(promised_keys)  # no doubled history
    eligible = {r["key"] for r in rows if r["status"] == "eligible"}
    batches = read_whole_feed(draw)
    recompute_chain(batches)
    adds = [e["key"] for b in batches for e in b["entries"] if e["kind"] == "add" and e["key"] in promised_keys]
    assert len(adds) == len(set(adds)) and set(adds) == eligible  # each eligible key fed exactly once


def committed(sql: Any, uploads: Uploads) -> int:
    with uploads.lock:
        promised_keys = sorted(uploads.promised)
    return int(sql("SELECT count(*) AS n FROM invoices WHERE key = ANY($1)", promised_keys)[0]["n"])


def _process(stack: Any, port: int) -> subprocess.Popen[bytes]:
    return next(p for name, p in reversed(stack.procs) if name == f"redis-{port}" and p.poll() is None)


def _promoted(port: int, slot: int, victim: int) -> bool:
    try:
        node = rediscluster.primary_of(port, slot)
    except LookupError:
        return False
    return node.port != victim and not node.failed


def _retry(base_url: str, refused: list[tuple[str, str, list[dict[str, Any]]]]) -> set[str]:
    """Each upload answered 503, sent again by its channel once the cluster is whole: answered 200, each invoice
    accepted or the channel's own (with its receipt), never another's duplicate."""
    found: set[str] = set()
    for channel_id, secret, batch in refused:
        with SignedClient(base_url, channel_id, secret) as channel:
            answer = channel.upload(batch)
        assert answer.status_code in OK, answer.text
        results = answer.json()["results"]
        assert len(promised(results)) == len(results) == len(batch), results
        found.update(promised(results))
    return found


def _stop(workers: list[subprocess.Popen[bytes]]) -> None:
    for w in workers:
        if w.poll() is None:
            w.send_signal(signal.SIGTERM)
    for w in workers:
        w.wait(30)
