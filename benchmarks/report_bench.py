"""The daily report at 10 M invoices: ``GET /v1/reports/daily?date=`` against rollups of a campaign of that size
(issue 14: a day's report must answer in under 100 ms).

    .venv/bin/python benchmarks/report_bench.py [--invoices 10000000] [--requests 300]

Starts Redis, PostgreSQL and the gateway (2 processes) under .data/bench-report, then writes the rollup rows
(``report_daily``) of a campaign of ``--invoices`` invoices directly, as the workers' transactions would have
left them: 365 days (weekends 1.5 times a weekday, a Spring Festival week 5 times, 12 evening-promotion days 3
times), 10 channels (Zipf shares), the campaign's 16 eligible industries and "other", every metric with its
reasons (received, accepted, duplicate, 15 rejection reasons, rate-limited, 3 caps, verified, eligible, 8
ineligible and 8 held reasons, reversed, with amounts), and the distinct counts of every scope (the day, each
channel, each industry, each channel within an industry). A cell is a row only when its count is not 0, as the
real upserts leave them. The invoices themselves and the distinct sets are not written: the report never reads
them, which is the point.

Then, in the same run, the machine's own floors: ``/healthz`` (an HTTP round trip through the same server) and
a signed ``GET /v1/feed?limit=1`` (authentication with its nonce in Redis, one indexed query), and the report's
query alone, in this process, on one connection. Requests are sequential, for random days and for the
busiest day, JSON, one channel's, and CSV. Writes benchmarks/results/reports.json and .md.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import bench_stack, save  # noqa: E402
from core import campaign as campaigns  # noqa: E402
from core import report  # noqa: E402
from core.rollup import ALL  # noqa: E402
from loadtest.client import SignedClient  # noqa: E402

CAMPAIGN = campaigns.load(ROOT / "deploy" / "campaigns" / "hefei-2026.toml")
DAYS = [dt.date(2026, 1, 1) + dt.timedelta(days=n) for n in range(365)]
CHANNELS = ["demo-channel", "demo-channel-2", *(f"channel-{n}" for n in range(3, 11))]
INDUSTRIES = [*CAMPAIGN.eligibility.categories, "other"]
REJECTED = ["invalid_number", "missing_code", "invalid_code", "invalid_check_code", "invalid_issue_date"]
REJECTED += ["invalid_amount", "invalid_seller_tax_id", "invalid_buyer_name", "invalid_user", "invalid_id_number"]
REJECTED += ["outside_campaign_window", "invoice_outside_region", "seller_outside_region", "below_minimum_amount"]
REJECTED += ["buyer_name_mismatch"]
CAPPED = ["person_daily_cap", "person_monthly_cap", "seller_person_monthly_cap"]
INELIGIBLE = ["not_found_at_tax_authority", "verification_failed", "amount_mismatch", "issue_date_mismatch"]
INELIGIBLE += ["seller_mismatch", "buyer_name_mismatch", "excluded_invoice_kind", "category_not_eligible"]
HELD = ["blacklisted_person", "blacklisted_device", "blacklisted_seller", "device_many_persons"]
HELD += ["seller_few_persons", "seller_high_value_burst", "seller_reversal_spike", "upload_far_from_city"]
# Shares of a cell's received invoices: (metric, reasons, share, with an amount).
OUTCOMES: list[tuple[str, list[str], float, bool]] = [
    ("accepted", [""], 0.80, False),
    ("duplicate", [""], 0.08, False),
    ("rejected", REJECTED, 0.05, False),
    ("rate_limited", [""], 0.02, False),
    ("capped", CAPPED, 0.05, False),
    ("verified", [""], 0.78, False),
    ("eligible", [""], 0.70, True),
    ("ineligible", INELIGIBLE, 0.06, False),
    ("held", HELD, 0.01, False),
    ("reversed", ["reversed_at_verification", "reversed_by_red_invoice"], 0.005, True),
]
MEAN_FEN = 18_000


def day_weights() -> list[float]:
    rng = random.Random(14)
    promotions = set(rng.sample(range(len(DAYS)), 12))
    weights = []
    for n, day in enumerate(DAYS):
        w = 1.5 if day.weekday() >= 5 else 1.0
        if dt.date(2026, 2, 16) <= day <= dt.date(2026, 2, 22):  # the Spring Festival week
            w *= 5
        if n in promotions:
            w *= 3
        weights.append(w)
    return weights


def rollup_rows(invoices: int) -> Iterator[tuple[dt.date, list[tuple[Any, ...]]]]:
    """Every rollup row of the campaign (day, channel, industry, metric, reason, count, amount_fen), a day at a
    time."""
    rng = random.Random(1414)
    channel_share = normalise([1 / (n + 1) for n in range(len(CHANNELS))])
    industry_share = normalise([rng.uniform(0.2, 1.0) for _ in INDUSTRIES])
    for day, w in zip(DAYS, normalise(day_weights()), strict=True):
        rows: list[tuple[Any, ...]] = []
        for channel, cs in zip(CHANNELS, channel_share, strict=True):
            for industry, ind in zip(INDUSTRIES, industry_share, strict=True):
                received = round(invoices * w * cs * ind)
                if received:
                    rows += cell_rows(rng, day, channel, industry, received)
        rows += distinct_rows(rng, day, round(invoices * w * 0.70))
        yield day, rows


def cell_rows(rng: random.Random, day: dt.date, channel: str, industry: str, received: int) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = [(day, channel, industry, "received", "", received, received * MEAN_FEN)]
    for metric, reasons, share, amount in OUTCOMES:
        total = received * share
        for reason, part in zip(reasons, normalise([rng.random() for _ in reasons]), strict=True):
            count = round(total * part)
            if count:
                rows.append((day, channel, industry, metric, reason, count, count * MEAN_FEN if amount else 0))
    return rows


def distinct_rows(rng: random.Random, day: dt.date, eligible: int) -> list[tuple[Any, ...]]:
    scopes = [(ALL, ALL), *((c, ALL) for c in CHANNELS), *((ALL, i) for i in INDUSTRIES)]
    scopes += [(c, i) for c in CHANNELS for i in INDUSTRIES]
    rows = []
    for channel, industry in scopes:
        share = 1.0 if (channel, industry) == (ALL, ALL) else rng.uniform(0.01, 0.3)
        consumers = round(eligible * share / 1.3)
        if consumers:
            rows.append((day, channel, industry, "consumers", "", consumers, 0))
            rows.append((day, channel, industry, "merchants", "", max(1, consumers // 40), 0))
    return rows


def normalise(values: list[float]) -> list[float]:
    total = sum(values)
    return [v / total for v in values]


async def load(database_url: str, invoices: int) -> dict[str, Any]:
    """Write the rollups, a day at a time (COPY); returns what was written and the busiest day."""
    import asyncpg

    conn = await asyncpg.connect(database_url)
    per_day: dict[dt.date, int] = {}
    try:
        started = time.perf_counter()
        columns = ["day", "channel", "industry", "metric", "reason", "count", "amount_fen"]
        received = 0
        for day, rows in rollup_rows(invoices):
            await conn.copy_records_to_table("report_daily", records=rows, columns=columns)
            per_day[day] = len(rows)
            received += sum(r[5] for r in rows if r[3] == "received")
        await conn.execute("VACUUM ANALYZE report_daily")
        size = await conn.fetchval("SELECT pg_total_relation_size('report_daily')")
        busiest = max(per_day, key=lambda d: per_day[d])
        return {
            "rows": sum(per_day.values()),
            "received": received,
            "load_s": time.perf_counter() - started,
            "table_bytes": size,
            "busiest_day": busiest.isoformat(),
            "busiest_rows": per_day[busiest],
        }
    finally:
        await conn.close()


def timed(call: Callable[[], Any], n: int) -> list[float]:
    found = []
    for _ in range(n):
        started = time.perf_counter()
        call()
        found.append((time.perf_counter() - started) * 1000)
    return found


async def query_ms(database_url: str, days: list[dt.date]) -> list[float]:
    """The report's own read (core/report.read), in this process, on one connection: the query's floor."""
    import asyncpg

    conn = await asyncpg.connect(database_url)
    try:
        found = []
        for day in days:
            started = time.perf_counter()
            await report.read(conn, day, day)
            found.append((time.perf_counter() - started) * 1000)
        return found
    finally:
        await conn.close()


def summary(samples: list[float]) -> dict[str, Any]:
    ordered = sorted(samples)
    return {
        "median_ms": statistics.median(ordered),
        "p90_ms": ordered[int(len(ordered) * 0.9)],
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
        "n": len(ordered),
    }


def measure(stack: Any, requests: int, busiest: dt.date) -> dict[str, Any]:
    import httpx

    url = f"http://127.0.0.1:{stack.port}"
    rng = random.Random(7)
    days = [rng.choice(DAYS) for _ in range(requests)]
    out: dict[str, Any] = {}
    with SignedClient(url, "demo-auditor", "demo-auditor-secret") as auditor, httpx.Client(base_url=url) as plain:
        for _ in range(20):  # warm: connections, the client table, PostgreSQL's plans and pages
            auditor.request("GET", f"/v1/reports/daily?date={rng.choice(DAYS)}")
        it = iter(days)
        out["report_random_day"] = summary(
            timed(lambda: ok(auditor.request("GET", f"/v1/reports/daily?date={next(it)}")), requests)
        )
        out["report_busiest_day"] = summary(
            timed(lambda: ok(auditor.request("GET", f"/v1/reports/daily?date={busiest}")), requests)
        )
        it = iter(days)
        out["report_one_channel"] = summary(
            timed(
                lambda: ok(auditor.request("GET", f"/v1/reports/daily?date={next(it)}&channel=demo-channel")), requests
            )
        )
        it = iter(days)
        out["report_csv"] = summary(
            timed(
                lambda: ok(
                    auditor.request("GET", f"/v1/reports/daily?date={next(it)}", headers={"Accept": "text/csv"})
                ),
                requests,
            )
        )
        out["floor_healthz"] = summary(timed(lambda: ok(plain.get("/healthz")), requests))
    with SignedClient(url, "demo-draw", "demo-draw-secret") as draw:
        out["floor_signed_feed"] = summary(timed(lambda: ok(draw.feed(after=0, limit=1)), requests))
    out["query_alone"] = summary(asyncio.run(query_ms(stack.env["GATEWAY_DATABASE_URL"], days)))
    return out


def ok(resp: Any) -> Any:
    assert resp.status_code == 200, resp.text
    return resp


def markdown(r: dict[str, Any]) -> str:
    load_ = r["load"]
    lines = [
        f"A campaign of {load_['received']:,} invoices received: {load_['rows']:,} rollup rows "
        f"({load_['table_bytes'] / 2**20:,.0f} MiB with its index), the busiest day {load_['busiest_day']} with "
        f"{load_['busiest_rows']:,} rows; {r['requests']} sequential "
        "requests each; gateway: 2 processes; 2 cores shared by everything.\n",
        "| what | median | p90 | p99 | median / signed floor |",
        "| --- | --- | --- | --- | --- |",
    ]
    floor = r["measured"]["floor_signed_feed"]["median_ms"]
    for name, m in r["measured"].items():
        figures = f"{m['median_ms']:.2f} ms | {m['p90_ms']:.2f} ms | {m['p99_ms']:.2f} ms"
        lines.append(f"| {name.replace('_', ' ')} | {figures} | {m['median_ms'] / floor:.2f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--invoices", type=int, default=10_000_000)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    with bench_stack(full=False, name="bench-report") as stack:
        stack.start_gateway(processes=2)
        loaded = asyncio.run(load(stack.env["GATEWAY_DATABASE_URL"], args.invoices))
        measured = measure(stack, args.requests, dt.date.fromisoformat(loaded["busiest_day"]))
    result = {"invoices": args.invoices, "requests": args.requests, "load": loaded, "measured": measured}
    save("reports", "Daily report at 10 M invoices", result, markdown)


if __name__ == "__main__":
    main()
