"""A month's archive at 1 M invoices (issue 16): seconds to write it and to verify it, bytes per invoice on disk,
and the peak memory of each, against a month of 100,000 in the same run (streamed: it must not grow).

    .venv/bin/python benchmarks/archive_bench.py [--invoices 1000000] [--small 100000]

Starts Redis and PostgreSQL under .data/bench-archive, then writes a month of invoices as the workers would
have left them, in SQL (fast): each invoice with its three status events (accepted, verified, eligible), its
ledger line and its outbox record; two thirds of them eligible, sealed into batches of 1,000 whose hashes are
chained as the sealer chains them (computed in PostgreSQL). ``gateway archive --month`` runs as a process of its
own, then the auditor's kit (``python3 gateway/audit_kit.py archive``), each timed, its peak RSS read from the
kernel (VmHWM). The machine's floors in the same run: ``COPY (SELECT * FROM invoices ...) TO
STDOUT`` of the month to /dev/null (PostgreSQL's share), and gzip of that many bytes in this process.
Writes benchmarks/results/archive.json and .md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import bench_stack, save  # noqa: E402
from deploy.devstack import VENV_BIN  # noqa: E402

MONTHS = {"small": "2026-04", "large": "2026-03"}

POPULATE = [
    "SELECT create_partition(p, p.tbl, $1::date) FROM partitioned p",
    """INSERT INTO invoices (key, channel, number, code, issue_date, amount_fen, seller_tax_id, seller_name, category,
        person, user_ref, device_ref, status, reason, accepted_at, updated_at, batch_seq)
    SELECT k, 'channel-' || (g % 7), k, '', $1::date + (g % 28), 10000 + g % 90000,
           '9134010' || lpad((g % 5000)::text, 11, '0'),
           '合肥示例餐饮有限公司', 'catering', md5('p' || g) || md5('q' || g), md5('u' || g) || md5('v' || g),
           md5('d' || g) || md5('e' || g), CASE WHEN g % 3 = 0 THEN 'ineligible' ELSE 'eligible' END,
           CASE WHEN g % 3 = 0 THEN 'below_minimum_amount' END, t, t + interval '2 seconds',
           CASE WHEN g % 3 <> 0 THEN 1 END
    FROM (SELECT g, $2::bigint * 10000000 + g AS n, ($1::date::timestamp AT TIME ZONE 'Asia/Shanghai')
                 + (g * (2419200.0 / $3)) * interval '1 second' AS t FROM generate_series(1, $3) g) s,
         LATERAL (SELECT '2634' || lpad(n::text, 16, '0') AS k) kk""",
    "INSERT INTO invoice_keys SELECT key, accepted_at FROM invoices WHERE accepted_at >= $4 AND accepted_at < $5",
    """INSERT INTO invoice_events (key, channel, status, reason, at)
    SELECT key, channel, e.status, e.reason, accepted_at + e.after FROM invoices,
    LATERAL (VALUES ('accepted', NULL, interval '0'), ('verified', NULL, interval '1 second'),
                    (invoices.status, invoices.reason, interval '2 seconds')) AS e(status, reason, after)
    WHERE accepted_at >= $4 AND accepted_at < $5""",
    "INSERT INTO accepted_ledger SELECT (accepted_at AT TIME ZONE 'Asia/Shanghai')::date, key FROM invoices"
    " WHERE accepted_at >= $4 AND accepted_at < $5",
    """INSERT INTO outbox (destination, subject, kind, record, created_at, delivered_at)
    SELECT 'national', key, 'invoice', jsonb_build_object('key', key, 'channel', channel, 'events',
           jsonb_build_array(jsonb_build_object('status', 'received', 'at', iso_ms(accepted_at))),
           'invoice', jsonb_build_object('person', person, 'seller_tax_id', seller_tax_id, 'amount_fen', amount_fen,
           'issue_date', issue_date, 'industry', category, 'accepted_at', iso_ms(accepted_at))),
           accepted_at, accepted_at + interval '3 seconds'
    FROM invoices WHERE accepted_at >= $4 AND accepted_at < $5""",
]
# The feed: the month's eligible invoices in batches of 1,000, in order of acceptance, each sealed when its last
# entry was ready.
FEED_ENTRIES = """
INSERT INTO feed_entries (key, kind, body, ready_at)
SELECT key, 'add', jsonb_build_object('key', key, 'kind', 'add', 'person', person, 'channel', channel,
       'amount_fen', amount_fen, 'issue_date', issue_date, 'seller_tax_id', seller_tax_id, 'category', category,
       'accepted_at', iso_ms(accepted_at))::text, accepted_at
FROM invoices WHERE accepted_at >= $1 AND accepted_at < $2 AND status = 'eligible' ORDER BY accepted_at
"""
# jsonb's text has spaces after ':' and ','; the feed's canonical text has none (and sorted keys: jsonb sorts
# keys by length first, so the bodies are rewritten by Python below, as core/feed.py writes them).
SEAL = """
DO $$
DECLARE prev text := coalesce((SELECT sha256 FROM feed_batches ORDER BY seq DESC LIMIT 1), repeat('0', 64));
        s bigint := coalesce((SELECT max(seq) FROM feed_batches), 0);
        ids bigint[];
        sha text;
        at timestamptz;
BEGIN
    LOOP
        SELECT array_agg(id ORDER BY id), max(ready_at) INTO ids, at
        FROM (SELECT id, ready_at FROM feed_entries WHERE batch_seq IS NULL ORDER BY id LIMIT 1000) x;
        EXIT WHEN ids IS NULL;
        s := s + 1;
        SELECT encode(sha256(convert_to(prev || E'\\n' || string_agg(body, E'\\n' ORDER BY id), 'UTF8')), 'hex')
        INTO sha FROM feed_entries WHERE id = ANY(ids);
        INSERT INTO feed_batches VALUES (s, at, cardinality(ids), prev, sha);
        UPDATE feed_entries SET batch_seq = s WHERE id = ANY(ids);
        prev := sha;
    END LOOP;
END $$
"""


async def populate(url: str, month: str, n: int, series: int) -> None:
    import asyncpg
    import orjson

    conn = await asyncpg.connect(url)
    try:
        first = f"{month}-01"
        start, end = await conn.fetchrow(
            "SELECT ($1::date::timestamp AT TIME ZONE 'Asia/Shanghai'),"
            " (($1::date + interval '1 month')::timestamp AT TIME ZONE 'Asia/Shanghai')",
            dt_date(first),
        )
        await conn.execute(POPULATE[0].replace("$1::date", f"'{first}'::date"))
        await conn.execute(POPULATE[1], dt_date(first), series, n)
        for statement in POPULATE[2:]:
            await conn.execute(statement.replace("$4", "$1").replace("$5", "$2"), start, end)
        await conn.execute(FEED_ENTRIES, start, end)
        rows = await conn.fetch("SELECT id, body FROM feed_entries WHERE batch_seq IS NULL")
        canonical = [orjson.dumps(orjson.loads(r["body"]), option=orjson.OPT_SORT_KEYS).decode() for r in rows]
        await conn.execute(
            "UPDATE feed_entries f SET body = c.body FROM unnest($1::bigint[], $2::text[]) AS c(id, body)"
            " WHERE f.id = c.id",
            [r["id"] for r in rows],
            canonical,
        )
        await conn.execute(SEAL)
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


def dt_date(text: str) -> Any:
    import datetime as dt

    return dt.date.fromisoformat(text)


def timed(argv: list[str], env: dict[str, str]) -> dict[str, Any]:
    """Run a process to its end: seconds, peak RSS (MiB) and its output. The peak is the kernel's high-water mark
    of the process's own memory (VmHWM, read every 20 ms until it exits): wait4's ru_maxrss would count this
    benchmark's own memory too, which a child carries through fork and exec."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak_kib = 0
    while proc.poll() is None:
        with contextlib.suppress(OSError):
            status = Path(f"/proc/{proc.pid}/status").read_text()
            peak_kib = max(peak_kib, int(status.split("VmHWM:")[1].split()[0]))
        time.sleep(0.02)
    took = time.perf_counter() - started
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(out + err)
    return {"seconds": took, "peak_rss_mib": peak_kib / 1024, "output": (out + err).splitlines()[-2:]}


async def floors(url: str, month: str) -> dict[str, float]:
    """PostgreSQL's COPY of the month's invoices as JSON to nothing, and gzip of as many bytes, in seconds."""
    import asyncpg

    conn = await asyncpg.connect(url)
    chunks: list[bytes] = []

    async def keep(chunk: bytes) -> None:
        chunks.append(chunk)

    try:
        started = time.perf_counter()
        await conn.copy_from_query(
            f"SELECT row_to_json(t)::text FROM (SELECT * FROM invoices_p{month.replace('-', '_')}) t",
            output=keep,
            format="csv",
            delimiter="\x02",
            quote="\x01",
        )
        copy_s = time.perf_counter() - started
    finally:
        await conn.close()
    data = b"".join(chunks)
    started = time.perf_counter()
    gzip.compress(data, compresslevel=6)
    return {
        "copy_invoices_s": copy_s,
        "gzip_invoices_s": time.perf_counter() - started,
        "invoices_json_bytes": len(data),
    }


def measure(stack: Any, month: str, n: int, out: Path) -> dict[str, Any]:
    env = stack.env
    wrote = timed([str(VENV_BIN / "gateway"), "archive", "--month", month, "--out", str(out)], env)
    checked = timed(
        [sys.executable, "-I", str(ROOT / "gateway" / "audit_kit.py"), "archive", str(out)], {"PATH": "/usr/bin:/bin"}
    )
    size = sum(p.stat().st_size for p in out.iterdir())
    return {
        "invoices": n,
        "write": wrote,
        "verify": checked,
        "bytes": size,
        "bytes_per_invoice": size / n,
        "floors": asyncio.run(floors(env["GATEWAY_DATABASE_URL"], month)),
    }


def markdown(r: dict[str, Any]) -> str:
    lines = [
        "A month's archive (`gateway archive --month`) and its verification by the auditor's kit, each a process of"
        " its own; peak RSS from the kernel. Floors: PostgreSQL's COPY of the month's invoices as JSON, and gzip of"
        " those bytes, in the same run.\n",
        "| invoices | write (s) | write peak RSS (MiB) | verify (s) | verify peak RSS (MiB) | on disk (MB)"
        " | bytes/invoice | COPY invoices (s) | gzip invoices (s) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for m in r["months"]:
        f = m["floors"]
        lines.append(
            f"| {m['invoices']:,} | {m['write']['seconds']:.1f} | {m['write']['peak_rss_mib']:.0f} |"
            f" {m['verify']['seconds']:.1f} | {m['verify']['peak_rss_mib']:.0f} | {m['bytes'] / 1e6:.1f} |"
            f" {m['bytes_per_invoice']:.0f} | {f['copy_invoices_s']:.1f} | {f['gzip_invoices_s']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--invoices", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=100_000)
    args = parser.parse_args()
    found = []
    with bench_stack(full=False, name="bench-archive") as stack:
        url = stack.env["GATEWAY_DATABASE_URL"]
        stack.ensure_keys()
        for (name, month), n in zip(MONTHS.items(), (args.small, args.invoices), strict=True):
            started = time.perf_counter()
            asyncio.run(populate(url, month, n, 1 if name == "small" else 2))
            print(f"{n:,} invoices of {month} written in {time.perf_counter() - started:.0f} s", flush=True)
        for month, n in zip(MONTHS.values(), (args.small, args.invoices), strict=True):
            found.append(measure(stack, month, n, stack.data / "archives" / month))
    save("archive", "A month's archive", {"months": found}, markdown)


if __name__ == "__main__":
    main()
