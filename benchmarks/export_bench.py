"""Delivery to the national platform: how long a change waits before the platform holds its record, with the
platform healthy (issue 14's target: 99% within 60 s), and how fast the relay clears a backlog against how fast
the platform itself takes records, in the same run.

    .venv/bin/python benchmarks/export_bench.py [--rate 200] [--seconds 60] [--outage 30]

Starts the whole dev stack (gateway, 2 workers, the tax service's and the national platform's simulators, the
export process) under .data/bench-export, as ``make run`` does, with the platform healthy (its latency: median
10 ms, p99 80 ms; no errors). Then:

1. steady: uploads ``--rate`` invoices a second in requests of 20 (fresh invoices, fresh consumers) for
   ``--seconds``; waits until the outbox is empty; per record, the time from its change (the outbox row's
   creation, in the change's transaction) to its delivery, and, for the invoices' receipts, from the gateway's
   acceptance to delivery (through the whole pipeline);
2. backlog: the platform announces an outage of ``--outage`` seconds while the same uploads go on; once it is
   over, how fast the relay delivers the backlog (records/s);
3. the platform's own rate: the same records posted straight to it, signed, in batches of the relay's size,
   one request at a time as the relay sends them (records/s).

Writes benchmarks/results/export.json and .md.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import secrets
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import bench_stack, save  # noqa: E402
from core.signing import sign_headers  # noqa: E402
from loadtest import sample  # noqa: E402
from loadtest.client import SignedClient  # noqa: E402
from workers import national  # noqa: E402

PER_REQUEST = 20
LATENCY = """
SELECT count(*) AS n,
       percentile_cont(ARRAY[0.5, 0.9, 0.99]) WITHIN GROUP (ORDER BY extract(epoch FROM delivered_at - created_at))
           AS change,
       max(extract(epoch FROM delivered_at - created_at))::float8 AS worst,
       count(*) FILTER (WHERE delivered_at - created_at <= interval '60 seconds') AS within_60s,
       percentile_cont(ARRAY[0.5, 0.9, 0.99]) WITHIN GROUP (ORDER BY extract(epoch FROM
           delivered_at - (record->'invoice'->>'accepted_at')::timestamptz)) FILTER (WHERE record ? 'invoice')
           AS from_acceptance
FROM outbox WHERE destination = 'national' AND id > $1 AND id <= $2
"""


def upload(url: str, rate: float, seconds: float, rng: random.Random) -> int:
    """``rate`` invoices a second in requests of 20, for ``seconds``; returns how many were accepted."""
    accepted = 0
    with SignedClient(url, "demo-channel", "demo-channel-secret") as channel:
        started = time.monotonic()
        sent = 0
        while (now := time.monotonic() - started) < seconds:
            due = int(now * rate) - sent
            if due < PER_REQUEST:
                time.sleep(PER_REQUEST / rate / 4)
                continue
            results = channel.upload([sample.invoice(rng) for _ in range(PER_REQUEST)]).json()["results"]
            accepted += sum(1 for r in results if r["status"] == "accepted")
            sent += PER_REQUEST
    return accepted


async def fetch(database_url: str, query: str, *args: Any) -> Any:
    import asyncpg

    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetchrow(query, *args)
    finally:
        await conn.close()


def sql(stack: Any, query: str, *args: Any) -> Any:
    return asyncio.run(fetch(stack.env["GATEWAY_DATABASE_URL"], query, *args))


def wait_empty(stack: Any, timeout_s: float = 600) -> float:
    """Seconds until no record waits for the national platform (and the workers have drained)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        row = sql(
            stack,
            "SELECT count(*) AS n FROM outbox WHERE destination = 'national' AND delivered_at IS NULL",
        )
        if row["n"] == 0:
            return time.monotonic() - started
        time.sleep(0.5)
    raise TimeoutError("the outbox did not empty")


def last_id(stack: Any) -> int:
    return int(sql(stack, "SELECT coalesce(max(id), 0) AS id FROM outbox")["id"])


def steady(stack: Any, url: str, rate: float, seconds: float) -> dict[str, Any]:
    first = last_id(stack)
    accepted = upload(url, rate, seconds, random.Random(1))
    time.sleep(2)  # the workers' last batch and seal
    wait_empty(stack)
    row = sql(stack, LATENCY, first, last_id(stack))
    return {
        "accepted": accepted,
        "records": row["n"],
        "change_to_delivery_s": {"p50": row["change"][0], "p90": row["change"][1], "p99": row["change"][2]},
        "worst_s": row["worst"],
        "within_60s": row["within_60s"] / row["n"],
        "acceptance_to_delivery_s": dict(zip(("p50", "p90", "p99"), row["from_acceptance"], strict=True)),
    }


def backlog(stack: Any, url: str, national_url: str, rate: float, outage_s: float) -> dict[str, Any]:
    first = last_id(stack)
    httpx.post(f"{national_url}/sandbox/control", json={"outage_s": outage_s})
    uploader = threading.Thread(target=upload, args=(url, rate, outage_s, random.Random(2)))
    uploader.start()
    uploader.join()
    waiting = sql(stack, "SELECT count(*) AS n FROM outbox WHERE id > $1 AND delivered_at IS NULL", first)["n"]
    left = max(0.0, float(httpx.get(f"{national_url}/sandbox/control").json()["outage_s"]))
    time.sleep(left)
    cleared_s = wait_empty(stack)
    row = sql(stack, DRAINED, first, cleared_s + 1)
    return {
        "backlog_rows": waiting,
        "cleared_s": cleared_s,
        "drained_records": row["records"],
        "drain_per_s": row["records"] / max(float(row["span"]), 1e-3),
    }


# The platform's records of the rows delivered since the outage ended (an invoice row: one per event).
DRAINED = """
SELECT sum(CASE WHEN kind = 'invoice' THEN jsonb_array_length(record->'events') ELSE 1 END)::int8 AS records,
       extract(epoch FROM max(delivered_at) - min(delivered_at))::float8 AS span
FROM outbox WHERE id > $1 AND delivered_at >= now() - make_interval(secs => $2)
"""


def platform_rate(stack: Any, national_url: str, batch: int, requests: int = 200) -> dict[str, Any]:
    """Records a second the platform takes, the relay's way (one signed request at a time), in this run."""
    env = stack.env
    record = {"type": "invoice.verified", "at": "2026-03-01T12:00:00.000Z", "key": "26341000000000000123"}
    started = time.monotonic()
    with httpx.Client() as client:
        for n in range(requests):
            batch_records = [{**record, "id": f"bench:{n}:{i}", "channel": "c"} for i in range(batch)]
            body = national.request_body(env.get("GATEWAY_EXPORT_CLIENT_ID", "prize-gateway"), "bench", batch_records)
            headers = sign_headers(
                env.get("GATEWAY_EXPORT_CLIENT_ID", "prize-gateway"),
                env["GATEWAY_EXPORT_SECRET"],
                "POST",
                national.PATH,
                body,
                int(time.time()),
                secrets.token_hex(16),
            )
            resp = client.post(f"{national_url}{national.PATH}", content=body, headers=headers)
            assert resp.status_code == 200, resp.text
    took = time.monotonic() - started
    return {"records": requests * batch, "batch": batch, "per_s": requests * batch / took}


def markdown(r: dict[str, Any]) -> str:
    s, b, p = r["steady"], r["backlog"], r["platform"]
    c, a = s["change_to_delivery_s"], s["acceptance_to_delivery_s"]
    rows = [
        ("records delivered (steady)", f"{s['records']:,} ({s['accepted']:,} invoices accepted)"),
        ("change to delivery, p50 / p90 / p99", f"{c['p50']:.2f} / {c['p90']:.2f} / {c['p99']:.2f} s"),
        ("worst", f"{s['worst_s']:.2f} s"),
        ("**within 60 s of their change**", f"**{s['within_60s']:.2%}** (target ≥ 99%)"),
        (
            "acceptance at the gateway to delivery (receipts), p50 / p90 / p99",
            f"{a['p50']:.2f} / {a['p90']:.2f} / {a['p99']:.2f} s",
        ),
        (
            f"backlog after a {r['outage']:g} s outage",
            f"{b['backlog_rows']:,} outbox rows, cleared {b['cleared_s']:.1f} s after it ended",
        ),
        (f"relay draining a backlog (at most {r['qps']:g} requests/s)", f"{b['drain_per_s']:,.0f} records/s"),
        (f"the platform itself, {p['batch']} records a request, one at a time", f"{p['per_s']:,.0f} records/s"),
        ("**relay / platform**", f"**{b['drain_per_s'] / p['per_s']:.0%}**"),
    ]
    head = (
        f"Platform healthy (latency median 10 ms, p99 80 ms); {r['rate']:g} invoices/s for {r['seconds']:g} s in "
        f"requests of {PER_REQUEST}; relay batches of {r['batch']} outbox rows; 2 cores shared by everything.\n\n"
    )
    return head + "| what | measured |\n| --- | --- |\n" + "".join(f"| {k} | {v} |\n" for k, v in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--outage", type=float, default=30.0)
    args = parser.parse_args()
    batch = 200  # GATEWAY_EXPORT_BATCH's default: outbox rows a request (about 1.5 records each)
    with bench_stack(full=True, workers=2, name="bench-export") as stack:
        url = f"http://127.0.0.1:{stack.port}"
        national_url = stack.env["GATEWAY_EXPORT_URL"]
        result = {
            "rate": args.rate,
            "seconds": args.seconds,
            "outage": args.outage,
            "batch": batch,
            "steady": steady(stack, url, args.rate, args.seconds),
            "backlog": backlog(stack, url, national_url, args.rate, args.outage),
            "platform": platform_rate(stack, national_url, 300),
            "qps": 10.0,
        }
    save("export", "Delivery to the national platform", result, markdown)


if __name__ == "__main__":
    main()
