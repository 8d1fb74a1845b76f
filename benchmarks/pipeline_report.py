"""The pipeline benchmark's one table (Markdown), from its result."""

from __future__ import annotations

import statistics
from typing import Any

Row = tuple[str, str, str, str]


def _med(rounds: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(r[key] for r in rounds))


def _cores(rounds: list[dict[str, Any]], who: str) -> float:
    return float(statistics.median(r["cores"].get(who, 0.0) for r in rounds))


def _each(values: list[float]) -> str:
    return "rounds " + " / ".join(f"{v:,.0f}" for v in values)


def _ms(rounds: list[dict[str, Any]], key: str) -> str:
    return f"{_med(rounds, key) / 1000:.1f}"


def _pct(ratio: float) -> str:
    return f"{ratio:.1%}" if ratio < 0.1 else f"{ratio:.0%}"


def _verdict(target: str, ok: bool) -> str:
    return f"{target}: {'met' if ok else '**not met**'}"


def limits_rows(lim: dict[str, Any]) -> list[Row]:
    get, post, redis, sink = lim["bare_app"]["get"], lim["bare_app"]["post"], lim["redis"], lim["sink"]
    pipelined, single = redis["pipelined_64"], redis["unpipelined"]
    return [
        ("**machine limits (same run)**", "", "", ""),
        (
            "bare ASGI app, GET, gunicorn + uvicorn worker, 2 processes (wrk, 32 connections)",
            f"{get['rps']:,.0f} req/s",
            f"{_each([r['rps'] for r in get['rounds']])}; wrk {_cores(get['rounds'], 'generator'):.2f} cores,"
            f" the bare app and all else {_cores(get['rounds'], 'others'):.2f}",
            "",
        ),
        (
            f"same app, POST of a 100-invoice body ({lim['upload_body_bytes']:,} B)",
            f"{post['rps']:,.0f} req/s",
            _each([r["rps"] for r in post["rounds"]]),
            "",
        ),
        (
            "Redis SET / SADD, pipelined 64 deep (redis-benchmark, 16 clients)",
            f"{pipelined['SET']['median']:,.0f} / {pipelined['SADD']['median']:,.0f} ops/s",
            "",
            "",
        ),
        (
            "Redis SET / SADD, one command per round trip (16 clients)",
            f"{single['SET']['median']:,.0f} / {single['SADD']['median']:,.0f} ops/s",
            "",
            "",
        ),
        sink_row(sink),
    ]


def _redis_calls(rounds: list[dict[str, Any]]) -> str:
    names = sorted({name for r in rounds for name in r.get("redis_per_request", {})})
    parts = []
    for name in names:
        seen = [r["redis_per_request"][name] for r in rounds if name in r.get("redis_per_request", {})]
        per_request = statistics.median(c["per_request"] for c in seen)
        if per_request >= 0.01:
            parts.append(f"{name} {per_request:.2f} ({statistics.median(c['usec_per_call'] for c in seen):.0f} µs)")
    return ", ".join(parts)


# Issue 19's targets, each printed beside its row.
SINGLE_SHARE = 0.12  # single-invoice requests/s, of the bare app's GET requests/s
SINGLE_CPU_US = 250  # gateway CPU per single-invoice request
BATCH_RATE = 40_000  # invoices/s in 100-invoice requests
P99_MS = {"single-invoice requests": 25, "100-invoice requests": 100}  # at 70% of the full-speed rate
END_TO_END_SHARE = 0.35  # of the sink's COPY + upsert limit
BURST_10M_MIN = 35  # minutes from the first upload of 10 M to the last in the feed
REDIS_KEPT_B = 150  # Redis bytes an invoice once drained and every rate window has passed


def _failed_share(rounds: list[dict[str, Any]]) -> str:
    if "limits_failed_open" not in rounds[0]:
        return "not counted"
    return _pct(statistics.median(r["limits_failed_open"] / max(r["requests"], 1) for r in rounds))


def gateway_cpu_us(g: dict[str, Any]) -> float:
    """The gateway's CPU per request at full speed: its cores over its requests/s (medians of the rounds)."""
    return statistics.median(r["cores"].get("gateway", 0.0) / r["rps"] * 1e6 for r in g["full"] if r["rps"])


def _waited(rounds: list[dict[str, Any]]) -> str:
    """The gateway's processes on a core and waiting for one (runnable), in cores: the machine's share of the tail."""
    if not all("gateway_waited" in r for r in rounds):
        return ""  # results saved before it was measured
    return f"; gateway on a core {_cores(rounds, 'gateway'):.2f}, waiting for one {_med(rounds, 'gateway_waited'):.2f}"


def gateway_rows(kind: str, g: dict[str, Any], limit: float, limit_name: str, target: tuple[str, bool]) -> list[Row]:
    full, paced = g["full"], g["paced"]
    rate = _med(full, "accepted_per_s")
    p99_paced = _med(paced, "p99_us") / 1000
    cpu = gateway_cpu_us(g)
    return [
        (f"{kind}: invoices accepted/s", f"{rate:,.0f}", f"{_pct(rate / limit)} of {limit_name}", _verdict(*target)),
        (
            "  gateway CPU per request at full speed (its cores / its requests/s)",
            f"{cpu:,.0f} µs",
            "",
            _verdict(f"≤ {SINGLE_CPU_US} µs", cpu <= SINGLE_CPU_US) if g["invoices_per_request"] == 1 else "",
        ),
        (
            "  p50 / p99 at full speed (32 connections)",
            f"{_ms(full, 'p50_us')} / {_ms(full, 'p99_us')} ms",
            _each([r["accepted_per_s"] for r in full]),
            "",
        ),
        (
            "  requests whose rate limits failed open (Redis slower than GATEWAY_RATELIMIT_TIMEOUT_MS), full / 70%",
            f"{_failed_share(full)} / {_failed_share(paced)}",
            "of the requests",
            "",
        ),
        (
            f"  p50 / p99 at 70% of that rate ({g['target_rps']:,.0f} req/s scheduled)",
            f"{_ms(paced, 'p50_us')} / {p99_paced:.1f} ms",
            f"{_med(paced, 'rps'):,.0f} req/s done{_waited(paced)}",
            _verdict(f"p99 ≤ {P99_MS[kind]} ms", p99_paced <= P99_MS[kind]),
        ),
        (
            "  Redis commands per request (INFO commandstats), and Redis's own µs per call",
            _redis_calls(full),
            "",
            "",
        ),
        (
            "  CPU at full speed (cores of 2): wrk / gateway / Redis / PostgreSQL / other work on the machine",
            " / ".join(f"{_cores(full, w):.2f}" for w in ("generator", "gateway", "redis", "postgres", "others")),
            f"busiest gateway process {statistics.median(r.get('busiest_gateway_process', 0.0) for r in full):.2f}",
            "",
        ),
    ]


def burst_rows(b: dict[str, Any], sink_rows: float, cached: dict[str, Any] | None = None) -> list[Row]:
    e2e = b["end_to_end_rate"] or 0.0
    whole = b["fed"] == b["fed_distinct"] == b["invoices"] == b["committed"]
    in_flight = f", {b['in_flight']} batches in flight each" if "in_flight" in b else ""
    return [
        (f"**end to end** (2 gateway processes, 2 workers{in_flight}, simulator)", "", "", ""),
        (
            f"burst of {b['invoices']:,} invoices, 100 a request: uploaded in",
            f"{b['upload_s']:.1f} s",
            f"{b['upload_rate']:,.0f} invoices/s taken; generator {b['generator_cores']:.2f} cores",
            "",
        ),
        (
            "  until the last one is in a sealed feed batch",
            f"{b['feed_s']:.1f} s" if b["feed_s"] else "never (stalled)",
            f"fed {b['fed']:,}, distinct {b['fed_distinct']:,}, committed {b['committed']:,}{_last_commit(b)}",
            _verdict("every one, once", whole),
        ),
        (
            "end to end: invoices/s from first upload to last sealed feed entry",
            f"{e2e:,.0f}",
            f"{_pct(e2e / sink_rows)} of the COPY + upsert limit",
            _verdict(f"≥ {END_TO_END_SHARE:.0%}", e2e >= END_TO_END_SHARE * sink_rows),
        ),
        *([] if cached is None else [cached_row(cached, sink_rows)]),
        (
            "  CPU from first upload to last feed entry (cores of 2)",
            ", ".join(f"{k} {v:.2f}" for k, v in b["cores"].items() if k != "generator"),
            f"generator {b['generator_cores']:.2f} while uploading",
            "",
        ),
        (
            "peak RSS during the burst",
            ", ".join(f"{k} {v / 1024:,.0f} MB" for k, v in b["peak_rss_kb"].items()),
            "",
            "",
        ),
        *redis_kept_rows(b),
    ]


def redis_kept_rows(b: dict[str, Any]) -> list[Row]:
    """Redis's bytes an invoice once the burst has drained and its rate windows have passed, by key family
    (benchmarks/redis_families.py ``kept_after_drain``; runs saved before it have none)."""
    kept = b.get("redis_bytes_kept")
    if kept is None:
        return []
    total = sum(kept.values())
    return [
        (
            "Redis memory an invoice, drained and every rate window passed (MEMORY USAGE of a sample, by TTL)",
            f"{total:,.0f} B",
            ", ".join(f"{k} {v:,.1f}" for k, v in kept.items() if abs(v) >= 0.05) or "nothing",
            _verdict(f"≤ {REDIS_KEPT_B} B", total <= REDIS_KEPT_B),
        )
    ]


def _last_commit(b: dict[str, Any]) -> str:
    last = b.get("last_commit_s")
    return "" if last is None else f", the last committed after {last:.1f} s"


def cached_row(c: dict[str, Any], sink_rows: float) -> Row:
    """The same burst on a fresh stack with every answer cached beforehand: the pipeline without the tax
    service. Its whole run (CPU, memory) is in the JSON under ``burst_cached``."""
    e2e = c["end_to_end_rate"] or 0.0
    whole = c["fed"] == c["fed_distinct"] == c["invoices"] == c["committed"]
    return (
        "end to end, every answer cached beforehand (the pipeline without the tax service)",
        f"{e2e:,.0f}",
        f"{_pct(e2e / sink_rows)} of the COPY + upsert limit; tax-service calls {c['tax_service_calls']:,}; "
        f"uploaded in {c['upload_s']:.1f} s{_last_commit(c)}, in the feed after {c['feed_s'] or 0:.1f} s; "
        f"fed {c['fed']:,}, distinct {c['fed_distinct']:,}, committed {c['committed']:,}; CPU "
        + ", ".join(f"{k} {v:.2f}" for k, v in c["cores"].items() if k != "generator"),
        _verdict(f"≥ {END_TO_END_SHARE:.0%}", e2e >= END_TO_END_SHARE * sink_rows and whole),
    )


def profile_lines(r: dict[str, Any]) -> list[str]:
    lines = []
    for what, prof in r.get("profiles", {}).items():
        if not prof["samples"]:
            lines += [f"No profile of the {what} (py-spy could not attach).", ""]
            continue
        own = ", ".join(f"{f} {x:.0%}" for f, x in prof["self"][:8])
        inclusive = ", ".join(f"{f} {x:.0%}" for f, x in prof["inclusive"][:10])
        lines += [
            f"Profile of the {what}, `{prof['file']}` ({prof['samples']} samples): self {own}; inclusive {inclusive}.",
            "",
        ]
    return lines


def generator_note(lim: dict[str, Any], gw: dict[str, Any]) -> str:
    """Why the generator is not the bottleneck: the same wrk, one thread, drove the bare app much faster."""
    bare = lim["bare_app"]["get"]
    bare_rps, bare_cores = bare["rps"], _cores(bare["rounds"], "generator")
    parts = []
    for kind, g in gw.items():
        rps, cores = _med(g["full"], "rps"), _cores(g["full"], "generator")
        parts.append(f"{kind} {rps:,.0f} req/s with {cores:.2f} cores ({cores / 2:.0%} of the machine)")
    return (
        f"The generator is not the bottleneck: the same wrk (one thread, pre-signed requests) drove the bare app at "
        f"{bare_rps:,.0f} req/s with {bare_cores:.2f} cores, while against the gateway it needed only "
        + "; ".join(parts)
        + ". A generator at its limit would sit near 1.00 core (one thread) and could not go faster on the bare app."
    )


def markdown(r: dict[str, Any]) -> str:
    lim, gw = r["limits"], r["gateway"]
    bare_get, bare_post, sink = lim["bare_app"]["get"]["rps"], lim["bare_app"]["post"]["rps"], lim["sink"]["median"]
    single = _med(gw["single"]["full"], "accepted_per_s")
    batch = _med(gw["batch"]["full"], "accepted_per_s")
    rows = limits_rows(lim)
    rows.append(("**gateway** (2 processes; no workers running)", "", "", ""))
    rows += gateway_rows("single-invoice requests", gw["single"], bare_get, "the bare app's GET",
                         (f"≥ {SINGLE_SHARE:.0%} of the bare app", single >= SINGLE_SHARE * bare_get))  # fmt: skip
    rows += gateway_rows("100-invoice requests", gw["batch"], bare_post * 100, "the bare app's POST x 100",
                         (f"≥ {BATCH_RATE:,}/s", batch >= BATCH_RATE))  # fmt: skip
    rows += burst_rows(r["burst"], sink, r.get("burst_cached"))
    lines = ["| what | measured | beside | target |", "| --- | --- | --- | --- |"]
    lines += [f"| {' | '.join(row)} |" for row in rows]
    lines += ["", f"Machine: {r['cores']} cores, shared; rounds of {r['round_s']:g} s, medians of {r['rounds']}.", ""]
    lines += [generator_note(lim, gw), ""]
    return "\n".join(lines + profile_lines(r))


def sink_row(sink: dict[str, Any]) -> Row:
    """The workers' own sink (COPY + upsert) as the limit beside the end-to-end figures."""
    return (
        f"PostgreSQL COPY + upsert (workers/sink.py), {sink['batch_rows']:,}-row transactions, 1 connection",
        f"{sink['median']:,.0f} rows/s",
        _each(sink["rounds"]),
        "",
    )


def burst_markdown(r: dict[str, Any]) -> str:
    """The table of a burst run on its own (``pipeline_bench.py --burst-only``; ``--cached-only`` has only the
    cached burst), and PostgreSQL's dearest statements when measured (``--pg-stats``)."""
    b, c, sink = r.get("burst"), r.get("burst_cached"), r["sink"]["median"]
    rows = [sink_row(r["sink"]), *(burst_rows(b, sink, c) if b else [cached_row(c, sink)] if c else [])]
    lines = ["| what | measured | beside | target |", "| --- | --- | --- | --- |"]
    lines += [f"| {' | '.join(row)} |" for row in rows]
    statuses = ", ".join(f"{k}: {v:,}" for k, v in sorted((b or c or {}).get("statuses", {}).items()))
    lines += ["", f"Answers the generators saw (requests): {statuses}."]
    for what, run in (("the burst", b), ("the burst with every answer cached", c)):
        if run and "pg_statements" in run:
            pg = run["pg_statements"]
            top = "; ".join(f"{t['us_per']:,.0f} µs in {t['calls']:,} calls of `{t['statement']}`" for t in pg["top"])
            lines += [
                "",
                f"PostgreSQL's execution time in {what}: {pg['us_per']:,.0f} µs an invoice, the dearest: {top}.",
            ]
            if "tables" in pg:  # runs saved before the tables were counted have only the statements
                writes = "; ".join(
                    f"{t['table']} {t['ins_per']:.2f} inserted, {t['upd_per']:.2f} updated ({t['hot_per']:.2f} HOT)"
                    for t in pg["tables"]
                )
                server = (
                    f" (the whole server {pg['server_wal_bytes_per']:,.0f}, with {pg['full_page_images_per']:.2f}"
                    f" full-page images an invoice; checkpoints since the server started: {pg['checkpoints']})"
                    if "server_wal_bytes_per" in pg
                    else ""
                )
                lines += [
                    "",
                    f"WAL {pg['wal_bytes_per']:,.0f} bytes an invoice{server}. Rows written an invoice: {writes}.",
                ]
    return "\n".join([*lines, ""])
