"""Several batches in flight in one worker (workers/overlap.py), on the real Redis and PostgreSQL: an invoice
delivered in batches in flight together is committed once, and a batch whose transaction fails is not
acknowledged while the batches beside it are."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import random
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import pytest

from core import contract, keys
from core import settings as config
from core.settings import Settings
from core.stores import open_redis
from gateway.parse import as_invoice
from gateway.validate import check
from loadtest import sample
from workers import main, overlap, stream
from workers.cli import run_worker

# A batch's transaction that PostgreSQL refuses: one invoice's key may not be written while the trigger is on.
FAIL_ON = (
    """CREATE FUNCTION test_overlap_fail_on() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NEW.key = '{key}' THEN RAISE EXCEPTION 'refused for the test'; END IF;
        RETURN NEW;
    END $$""",
    "CREATE TRIGGER test_overlap_fail BEFORE INSERT ON invoice_keys"
    " FOR EACH ROW EXECUTE FUNCTION test_overlap_fail_on()",
)
NO_FAIL = ("DROP TRIGGER IF EXISTS test_overlap_fail ON invoice_keys", "DROP FUNCTION IF EXISTS test_overlap_fail_on()")


def fresh(n: int, settings: Settings) -> list[contract.Queued]:
    """``n`` eligible invoices of distinct consumers, accepted now (as the gateway makes them)."""
    from core import campaign as campaigns

    camp = campaigns.load(settings.campaign_file)
    rng = random.Random()
    now_ms = int(dt.datetime.now(dt.UTC).timestamp() * 1000)
    made = [check(as_invoice(sample.invoice(rng)), camp, "demo-channel", "k", now_ms) for _ in range(n)]
    return [contract.unpack(msgspec.msgpack.encode(q)) for q in made]


async def enqueue(settings: Settings, entries: list[contract.Queued]) -> list[bytes]:
    """One stream entry per invoice, in this order (the same invoice may be in several, as a redelivery
    would have it); their ids."""
    redis = open_redis(settings.stores)
    try:
        await stream.ensure_groups(redis, 1)
        ids = []
        for q in entries:
            fields: dict[Any, Any] = {q.key: msgspec.msgpack.encode(q), "~channel": q.channel, "~at": q.accepted_at_ms}
            ids.append(await redis.xadd(keys.stream(0), fields))
        return ids
    finally:
        await redis.aclose()


async def pending_ids(settings: Settings) -> set[bytes]:
    redis = open_redis(settings.stores)
    try:
        found: Any = await redis.xpending_range(keys.stream(0), keys.GROUP, "-", "+", 1000)
        return {p["message_id"] for p in found}
    finally:
        await redis.aclose()


async def in_stream(settings: Settings, entry_id: bytes) -> bool:
    redis = open_redis(settings.stores)
    try:
        return bool(await redis.xrange(keys.stream(0), entry_id, entry_id))
    finally:
        await redis.aclose()


def drain_overlapping(settings: Settings, monkeypatch: pytest.MonkeyPatch, **changes: Any) -> int:
    """A burst worker reading one entry a batch with 4 batches in flight; returns the most that were seen in
    flight at once (a test of overlap that never overlapped proves nothing)."""
    process: Callable[..., Awaitable[int]] = main.Worker.process
    running = peak = 0

    async def counted(self: main.Worker, batch: stream.Batch) -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        try:
            return await process(self, batch)
        finally:
            running -= 1

    monkeypatch.setattr(main.Worker, "process", counted)
    tuned = config.replace(settings, worker_batch=1, worker_in_flight=4, **changes)
    asyncio.run(asyncio.wait_for(run_worker(tuned, burst=True, handle_signals=False), 120))
    return peak


def test_an_invoice_in_batches_in_flight_together_is_committed_once(
    settings: Settings, sql: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    invoices = fresh(6, settings)
    ids = asyncio.run(enqueue(settings, [q for q in invoices for _ in range(3)]))  # each in 3 entries in a row

    assert drain_overlapping(settings, monkeypatch) > 1
    keys_ = [q.key for q in invoices]
    rows = sql("SELECT key, count(*) AS n FROM invoices WHERE key = ANY($1) GROUP BY key", keys_)
    assert {r["key"]: r["n"] for r in rows} == dict.fromkeys(keys_, 1)
    fed = sql("SELECT key, count(*) AS n FROM feed_entries WHERE kind = 'add' AND key = ANY($1) GROUP BY key", keys_)
    assert {r["key"]: r["n"] for r in fed} == dict.fromkeys(keys_, 1)
    events = sql(
        "SELECT key, status, count(*) AS n FROM invoice_events WHERE key = ANY($1) GROUP BY key, status", keys_
    )
    assert {(r["key"], r["status"]): r["n"] for r in events} == {
        (k, s): 1 for k in keys_ for s in ("accepted", "verified", "eligible")
    }
    assert not asyncio.run(pending_ids(settings)) & set(ids)


def test_a_failed_batch_beside_others_in_flight_stays_unacknowledged_until_committed(
    settings: Settings, sql: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    invoices = fresh(8, settings)
    bad = invoices[3]
    ids = asyncio.run(enqueue(settings, invoices))
    for statement in FAIL_ON:
        sql(statement.replace("{key}", bad.key))
    try:
        assert drain_overlapping(settings, monkeypatch) > 1
    finally:
        for statement in NO_FAIL:
            sql(statement)
    good = [q.key for q in invoices if q is not bad]
    committed = {r["key"] for r in sql("SELECT key FROM invoices WHERE key = ANY($1)", [q.key for q in invoices])}
    assert committed == set(good)
    bad_id = ids[invoices.index(bad)]
    assert asyncio.run(pending_ids(settings)) & set(ids) == {bad_id}  # the others acknowledged, it not
    assert asyncio.run(in_stream(settings, bad_id))

    # Taken over once idle (here at once), it is committed and acknowledged; the others are not written again.
    drain_overlapping(settings, monkeypatch, worker_claim_idle_ms=1)
    rows = sql("SELECT key, count(*) AS n FROM invoices WHERE key = ANY($1) GROUP BY key", [q.key for q in invoices])
    assert {r["key"]: r["n"] for r in rows} == {q.key: 1 for q in invoices}
    assert not asyncio.run(pending_ids(settings)) & set(ids)
    assert not asyncio.run(in_stream(settings, bad_id))


def test_a_batch_that_met_a_passing_failure_is_tried_again_by_its_worker_without_spending_a_delivery(
    settings: Settings, sql: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL rolls back one batch's transaction twice for a conflict (SQLSTATE 40001, as a serialization
    failure would): the same worker tries it again and commits it, every entry delivered once, none a dead
    letter. Before, the batch's entries waited to be taken over, a delivery spent each time."""
    monkeypatch.setattr(overlap, "RETRY_AFTER_S", (0.1,))
    invoices = fresh(4, settings)
    bad = invoices[2]
    ids = asyncio.run(enqueue(settings, invoices))
    sql("CREATE SEQUENCE test_overlap_failures")
    sql(
        FAIL_ON[0]
        .replace("'{key}' THEN", "'{key}' AND nextval('test_overlap_failures') <= 2 THEN")
        .replace("'refused for the test'", "'refused for the test' USING ERRCODE = 'serialization_failure'")
        .replace("{key}", bad.key)
    )
    sql(FAIL_ON[1])
    tried: list[bytes] = []
    process: Callable[..., Awaitable[int]] = main.Worker.process

    async def seen(self: main.Worker, batch: stream.Batch) -> int:
        tried.extend(i for shard_ids in batch.ids.values() for i in shard_ids)
        return await process(self, batch)

    monkeypatch.setattr(main.Worker, "process", seen)
    try:
        tuned = config.replace(settings, worker_batch=1, worker_in_flight=4)
        asyncio.run(asyncio.wait_for(run_worker(tuned, burst=True, handle_signals=False), 120))
    finally:
        for statement in (*NO_FAIL, "DROP SEQUENCE test_overlap_failures"):
            sql(statement)
    rows = sql("SELECT key, count(*) AS n FROM invoices WHERE key = ANY($1) GROUP BY key", [q.key for q in invoices])
    assert {r["key"]: r["n"] for r in rows} == {q.key: 1 for q in invoices}
    bad_id = ids[invoices.index(bad)]
    assert sorted(tried) == sorted([*ids, bad_id, bad_id])  # the bad batch three times, each other once
    assert not asyncio.run(pending_ids(settings)) & set(ids)
    assert not asyncio.run(letters_of(settings, ids))


@pytest.mark.parametrize("own", [False, True], ids=["new", "own-pending-at-start"])
def test_a_batch_slower_than_the_claim_idle_time_is_held_by_its_worker(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, own: bool
) -> None:
    """With entries taken over after 300 ms, a batch that takes 1.2 s is not: its worker keeps claiming its
    entries for itself (no delivery spent), so another worker looking for idle entries finds none of them. The
    same for the entries a worker finds pending to its own name when it starts (read before, as by a worker of
    the same name that was restarted)."""
    invoices = fresh(1, settings)
    ids = asyncio.run(enqueue(settings, invoices))
    if own:
        asyncio.run(read_as_this_worker(settings))
    process: Callable[..., Awaitable[int]] = main.Worker.process
    seen: list[tuple[list[bytes], list[int]]] = []

    async def slow(self: main.Worker, batch: stream.Batch) -> int:
        await asyncio.sleep(1.2)
        other = open_redis(settings.stores)
        try:
            taken = await stream.claim_idle(other, "another-worker", 1, 300, 10, 5)
            found: Any = await other.xpending_range(keys.stream(0), keys.GROUP, "-", "+", 10)
            taken_ids = [i for shard_ids in taken.ids.values() for i in shard_ids]
            seen.append((taken_ids, [p["times_delivered"] for p in found]))
        finally:
            await other.aclose()
        return await process(self, batch)

    monkeypatch.setattr(main.Worker, "process", slow)
    tuned = config.replace(settings, worker_batch=1, worker_claim_idle_ms=300)
    asyncio.run(asyncio.wait_for(run_worker(tuned, burst=True, handle_signals=False), 120))
    assert seen == [([], [2 if own else 1])]  # none taken over; delivered once (and read again from its own list)
    assert not asyncio.run(pending_ids(settings)) & set(ids)


async def letters_of(settings: Settings, ids: list[bytes]) -> list[Any]:
    """The dead letters of shard 0 that were these entries."""
    redis = open_redis(settings.stores)
    try:
        letters: Any = await redis.xrange(keys.dead_letters(0))
        return [(i, f) for i, f in letters if f.get(b"~entry") in ids]
    finally:
        await redis.aclose()


async def read_as_this_worker(settings: Settings) -> None:
    """Read the new entries of shard 0 under the name the worker started here takes (``Worker.consumer``)."""
    redis = open_redis(settings.stores)
    try:
        name = f"{socket.gethostname()}-{os.getpid()}"
        await redis.xreadgroup(keys.GROUP, name, {keys.stream(0): ">"})
    finally:
        await redis.aclose()


def test_entries_whose_reply_was_lost_are_taken_up_by_their_worker_without_spending_a_delivery(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read of new entries times out after Redis has answered it (as under load): the entries are delivered to
    the worker, which never saw them. It finds them in its own pending list and fetches them by id: each is
    committed once, delivered once. Before, they waited to be taken over, a delivery spent each time, and under
    load the taking over timed out the same way until they were dead letters."""
    invoices = fresh(3, settings)
    ids = asyncio.run(enqueue(settings, invoices))
    read: Callable[..., Awaitable[stream.Batch]] = stream.read
    lost = 0

    async def losing(*args: Any, **kwargs: Any) -> stream.Batch:
        nonlocal lost
        batch = await read(*args, **kwargs)
        if not batch.empty and not lost:
            lost = sum(len(shard_ids) for shard_ids in batch.ids.values())
            raise TimeoutError("Timeout reading from the test")  # the reply, lost
        return batch

    process: Callable[..., Awaitable[int]] = main.Worker.process
    delivered: list[int] = []

    async def counted(self: main.Worker, batch: stream.Batch) -> int:
        found: Any = await self.redis.xpending_range(keys.stream(0), keys.GROUP, "-", "+", 100)
        mine = {i for shard_ids in batch.ids.values() for i in shard_ids}
        delivered.extend(p["times_delivered"] for p in found if p["message_id"] in mine)
        return await process(self, batch)

    monkeypatch.setattr(stream, "read", losing)
    monkeypatch.setattr(main.Worker, "process", counted)
    tuned = config.replace(settings, worker_claim_idle_ms=1000)
    asyncio.run(asyncio.wait_for(run_worker(tuned, burst=True, handle_signals=False), 120))
    assert lost == 3
    assert delivered == [1, 1, 1]
    assert not asyncio.run(pending_ids(settings)) & set(ids)
