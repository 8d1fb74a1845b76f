"""Reconciliation of one day, anyone can rerun it: ``GET /v1/admin/reconciliation?date=YYYY-MM-DD`` (roles
auditor and admin, gateway/reports.py) and ``gateway reconcile --date`` (exit status 1 when anything is
unexplained). No HTTP here: the command imports this module alone.

The keys accepted on the day (in the campaign's time zone) are gathered from everywhere they can be: the
ledger the sink writes in the transaction that commits each invoice (``accepted_ledger``: a row deleted from
``invoices`` is still named), the intake streams, the re-check sets, the dead letters and the in-flight claims.
Redis is read first (gateway/waiting.py: claims, then streams, then re-checks, then dead letters, the order in
which a key moves on) and PostgreSQL last, so a key moving meanwhile is seen twice, never missed. Each key is
then explained (where it is and why) or unexplained (what is wrong):

- committed: its row is in ``invoices`` and its status is its history's last; eligible: fed in exactly one
  batch (the feed's unique indexes allow no second ``add`` or ``void``); verified: its ``add`` waits for its
  payout hold, its re-verification or the next seal; reversed after being fed (or found changed when verified
  again before payout): exactly one ``void``; its receipt is in the outbox;
- queued in a stream, or waiting for a re-check: with its age; a dead letter or a claim with nothing behind it
  is unexplained.

Totals are checked against the daily report: accepted (the gateway's tallies) against the keys committed or
waiting for a re-check; received against the sum of its outcomes; eligible, its amount and the distinct
merchants and consumers against the batches sealed that day; a closed day's stored report against the
rollups. Every outbox record of the day is delivered, or listed as pending or parked.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

import asyncpg
import orjson

from core import report
from core.rollup import Conn, Rollup
from core.stores import RedisClient
from core.times import iso_ms
from gateway.waiting import Waiting, gather

SEAL_GRACE_S = 120.0  # a due feed entry unsealed longer than this is unexplained (the FeedStale alert's threshold)
QUERY_TIMEOUT_S = 120.0


async def reconcile(
    pool: asyncpg.Pool, redis: RedisClient, rollup: Rollup, shards: int, day: dt.date, listed: int
) -> dict[str, Any]:
    """The reconciliation of ``day``: ``ok`` when nothing is unexplained."""
    start, end = rollup.window(day)
    gathered = await gather(redis, shards, (int(start.timestamp() * 1000), int(end.timestamp() * 1000)))
    async with pool.acquire() as conn:
        now = await conn.fetchval("SELECT now()")
        ledger = await conn.fetch(LEDGER, day, start, end, timeout=QUERY_TIMEOUT_S)
        committed = {r["key"] for r in ledger}
        waiting = {k: w for k, w in gathered.waiting.items() if k not in committed}
        totals = await _totals(conn, day, (start, end), len(ledger), waiting, gathered.queued_entries)
        exports = await _outbox(conn, start, end, listed)
    explained, unexplained = _sorted_out(ledger, waiting, now)
    mismatches = [t for t in totals if not t["ok"]]
    return {
        "date": day.isoformat(),
        "timezone": rollup.zone.key,
        "window": {"from": iso_ms(start), "to": iso_ms(end)},
        "ok": not unexplained and not mismatches,
        "keys": {
            "accepted": len(explained) + len(unexplained),
            "explained": len(explained),
            "unexplained": len(unexplained),
        },
        "where": dict(sorted(Counter(f"{e['where']}/{e['status']}" for e in explained).items())),
        "unexplained": unexplained[:listed],
        "explained": explained[:listed],
        "totals": totals,
        "outbox": exports,
    }


def _sorted_out(
    ledger: list[asyncpg.Record], waiting: dict[str, Waiting], now: dt.datetime
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every key of the day as a line saying where it is and why: the explained ones, and the others."""
    explained: list[dict[str, Any]] = []
    unexplained: list[dict[str, Any]] = []
    for row in ledger:
        why, problem = _committed(row, now)
        line = _line(row["key"], "invoices", row["status"], why or problem or "")
        (explained if problem is None else unexplained).append(line)
    for key, w in sorted(waiting.items()):
        why, problem = _not_committed(w, now)
        (explained if problem is None else unexplained).append(_line(key, w.where, "accepted", why or problem or ""))
    return explained, unexplained


def _line(key: str, where: str, status: str | None, why: str) -> dict[str, Any]:
    return {"key": key, "where": where, "status": status, "why": why}


# The tables are partitioned by month (deploy/migrations/030_partitions.sql): nothing of a key accepted on the day
# is older than its acceptance ($2, the day's first instant), so each join reads the day's month on (the
# invoice: the day's month only) rather than every month's index once per key.
LEDGER = """
SELECT l.key, i.key IS NOT NULL AS present, i.status, i.reason, i.batch_seq,
       (SELECT e.status FROM invoice_events e WHERE e.key = l.key AND e.at >= $2 AND e.prize_id IS NULL
        ORDER BY e.id DESC LIMIT 1) AS last_event,
       a.key IS NOT NULL AS has_add, a.batch_seq AS add_batch, a.ready_at AS add_ready, a.reverify_at,
       v.key IS NOT NULL AS has_void, v.batch_seq AS void_batch,
       EXISTS (SELECT 1 FROM outbox o WHERE o.subject = l.key AND o.destination = 'national'
               AND o.kind = 'invoice' AND o.record ? 'invoice' AND o.created_at >= $2) AS reported
FROM accepted_ledger l
LEFT JOIN invoices i ON i.key = l.key AND i.accepted_at >= $2 AND i.accepted_at < $3
LEFT JOIN feed_entries a ON a.key = l.key AND a.kind = 'add' AND a.ready_at >= $2
LEFT JOIN feed_entries v ON v.key = l.key AND v.kind = 'void' AND v.ready_at >= $2
WHERE l.day = $1
ORDER BY l.key
"""


def _committed(r: asyncpg.Record, now: dt.datetime) -> tuple[str | None, str | None]:
    """(why, None) for a committed key that is where it should be, else (None, what is wrong)."""
    if not r["present"]:
        return None, "committed by the sink (in the ledger of accepted keys) but its row is missing from invoices"
    status = r["status"]
    if r["last_event"] != status:
        return None, f"its status is {status} but its history ends in {r['last_event']}"
    if not r["reported"]:
        return None, "no outbox record of its receipt for the national platform"
    if status == "eligible":
        if r["batch_seq"] is None or r["add_batch"] != r["batch_seq"] or r["has_void"]:
            return None, f"eligible in batch {r['batch_seq']} but its feed entries say add {r['add_batch']}"
        return f"fed in batch {r['batch_seq']}", None
    if status == "verified":
        return _due(r, now)
    if status == "reversed" or (status == "ineligible" and r["has_add"]):
        return _withdrawn(r)
    if r["has_add"]:
        return None, f"{status} but it has an add entry in the feed"
    if status in ("ineligible", "held"):
        return f"{'held for review' if status == 'held' else 'ineligible'}: {r['reason']}", None
    return None, f"unknown status {status}"


def _due(r: asyncpg.Record, now: dt.datetime) -> tuple[str | None, str | None]:
    if not r["has_add"] or r["add_batch"] is not None:
        return None, "verified (to be fed) but it has no feed entry waiting"
    ready = r["add_ready"]
    if r["reverify_at"] is not None:
        return f"waits to be verified again before it is fed (next try {iso_ms(r['reverify_at'])})", None
    if ready > now:
        return f"waits on its payout hold until {iso_ms(ready)}", None
    if (now - ready).total_seconds() <= SEAL_GRACE_S:
        return "due in the feed, waits for the next seal", None
    return None, f"due in the feed since {iso_ms(ready)} but not sealed"


def _withdrawn(r: asyncpg.Record) -> tuple[str | None, str | None]:
    """A reversed invoice, or one fed and then withdrawn at its re-verification before payout."""
    status = r["status"]
    if r["has_add"] and r["add_batch"] is None:
        return None, f"{status} but its add entry still waits to be fed"
    if r["has_add"]:
        if not r["has_void"]:
            return None, f"fed in batch {r['add_batch']} and {status}, but no void entry"
        where = "waits to be sealed" if r["void_batch"] is None else f"in batch {r['void_batch']}"
        return f"fed in batch {r['add_batch']}, {status} ({r['reason']}), void {where}", None
    return f"reversed ({r['reason']}), never fed", None


def _not_committed(w: Waiting, now: dt.datetime) -> tuple[str | None, str | None]:
    age_s = max(0.0, now.timestamp() - w.at_ms / 1000)
    if w.where == "stream":
        return f"queued in the intake stream for {age_s:.0f} s", None
    if w.where == "recheck":
        return f"waits for a re-check ({w.detail})", None
    if w.where == "dead":
        return None, f"set aside as a dead letter: {w.detail}"
    return None, f"claimed {age_s:.0f} s ago by {w.detail}, but neither queued, waiting nor committed"


async def _totals(
    conn: Conn,
    day: dt.date,
    window: tuple[dt.datetime, dt.datetime],
    ledger: int,
    waiting: dict[str, Waiting],
    queued_entries: int,
) -> list[dict[str, Any]]:
    """The daily report's totals against what the data holds."""
    (rep,) = await report.read(conn, day, day)
    fed = await conn.fetchrow(FED, *window, timeout=QUERY_TIMEOUT_S)
    assert fed is not None
    rechecking = sum(1 for w in waiting.values() if w.where == "recheck")
    outcomes = sum(rep[m] for m in ("accepted", "duplicate", "rejected", "rate_limited", "capped"))
    found = [
        _total("accepted", rep["accepted"], ledger + rechecking, "keys committed, or waiting for a re-check"),
        _total("eligible", rep["eligible"], fed["n"], "add entries of the batches sealed that day"),
        _total("eligible_amount_fen", rep["eligible_amount_fen"], fed["amount"], "their amounts"),
        _total("merchants", rep["merchants"], fed["merchants"], "distinct sellers of those entries"),
        _total("consumers", rep["consumers"], fed["consumers"], "distinct persons of those entries"),
    ]
    if queued_entries:  # a request's outcomes may span entries: its received count can run ahead meanwhile
        found.append(_total("received", 0, 0, f"not checked: {queued_entries} entries of the day still queued"))
    else:
        found.append(_total("received", rep["received"], outcomes, "the sum of the outcomes"))
    closed = await conn.fetchval("SELECT report FROM report_days WHERE day = $1", day)
    if closed is not None:
        stored = orjson.loads(closed)["days"][0]
        changed = [k for k in report.columns() if stored.get(k) != rep.get(k)]
        found.append(_total("closed report", len(changed), 0, "figures changed since the day was closed"))
    return found


FED = """
WITH b AS (SELECT seq FROM feed_batches WHERE sealed_at >= $1 AND sealed_at < $2),
e AS (SELECT body::jsonb AS body FROM feed_entries JOIN b ON batch_seq = b.seq WHERE kind = 'add')
SELECT count(*) AS n, coalesce(sum((body->>'amount_fen')::bigint), 0)::bigint AS amount,
       count(DISTINCT body->>'seller_tax_id') AS merchants, count(DISTINCT body->>'person') AS consumers
FROM e
"""


def _total(figure: str, in_report: int, found: int, against: str) -> dict[str, Any]:
    return {"figure": figure, "report": in_report, "found": found, "against": against, "ok": in_report == found}


async def _outbox(conn: Conn, start: dt.datetime, end: dt.datetime, listed: int) -> dict[str, Any]:
    counts = await conn.fetch(OUTBOX_COUNTS, start, end, timeout=QUERY_TIMEOUT_S)
    pending = await conn.fetch(OUTBOX_LIST + "parked_at IS NULL ORDER BY id LIMIT $3", start, end, listed)
    parked = await conn.fetch(OUTBOX_LIST + "parked_at IS NOT NULL ORDER BY id LIMIT $3", start, end, listed)
    return {
        "by_destination": {r["destination"]: {k: r[k] for k in ("delivered", "pending", "parked")} for r in counts},
        "pending": [_record(r) for r in pending],
        "parked": [_record(r) for r in parked],
    }


OUTBOX_COUNTS = """
SELECT destination, count(*) FILTER (WHERE delivered_at IS NOT NULL) AS delivered,
       count(*) FILTER (WHERE delivered_at IS NULL AND parked_at IS NULL) AS pending,
       count(*) FILTER (WHERE delivered_at IS NULL AND parked_at IS NOT NULL) AS parked
FROM outbox WHERE created_at >= $1 AND created_at < $2 GROUP BY destination ORDER BY destination
"""
OUTBOX_LIST = """
SELECT id, destination, subject, kind, created_at, attempts, parked_reason FROM outbox
WHERE created_at >= $1 AND created_at < $2 AND delivered_at IS NULL AND """


def _record(r: asyncpg.Record) -> dict[str, Any]:
    found = {k: r[k] for k in ("id", "destination", "subject", "kind", "attempts")}
    found["created_at"] = iso_ms(r["created_at"])
    if r["parked_reason"] is not None:
        found["reason"] = r["parked_reason"]
    return found
