"""Redis memory by key family, per invoice, after a burst of fresh consumers and after its drain.

    .venv/bin/python benchmarks/redis_memory.py [--invoices 1000000] [--sample 2000] [--caps-form before]

A fresh stack of its own (Redis, PostgreSQL, the simulator, the gateway of 2 processes; the channel limits
raised and no shedding, as ``make bench``'s burst): the burst is uploaded with no worker running, so the whole
backlog is in Redis at once (what the shedding would bound), then 2 workers drain it into the sealed feed,
and the in-flight claims' grace period is waited out. At each point every key is counted by family (SCAN of
the whole keyspace, ``core/keys.family``) and MEMORY USAGE is read for up to ``--sample`` keys of each family
(every one when fewer): a family's bytes are its count times its sample's mean. Each family's TTLs are read
on the same sample: what outlives 24 hours (every rate window has passed by then; a nonce stays spent 600 s)
is the memory an invoice keeps once drained.

The campaign's cap hashes take their compact form from this month, as in every benchmark
(``pipeline_bench.bench_campaign``); ``--caps-form before`` measures the form of the months before it.

Writes benchmarks/results/redis-memory.json and .md (with the date and the commit) and prints the table.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import bench_stack, save  # noqa: E402
from benchmarks.pipeline_bench import NO_SHEDDING, _upload, _wait_for_feed, bench_campaign  # noqa: E402
from benchmarks.redis_families import (  # noqa: E402
    DAY_MS,
    SCAN_COUNT,
    intake_shards,
    snapshot,
    wait_for_inflight_empty,
)
from core import campaign as campaigns  # noqa: E402
from core import keys  # noqa: E402


def _past_a_day(client: redis.Redis) -> int:
    """Redis's used_memory once what expires within 24 hours is gone: every such key deleted (the stack is the
    benchmark's own), then a few seconds for Redis to shrink its tables as its cron does."""
    found = list(client.scan_iter(count=SCAN_COUNT))
    for i in range(0, len(found), SCAN_COUNT):
        chunk = found[i : i + SCAN_COUNT]
        pipe = client.pipeline(transaction=False)
        for key in chunk:
            pipe.pttl(key)
        doomed = [k for k, ttl in zip(chunk, pipe.execute(), strict=True) if 0 <= int(ttl) <= DAY_MS]
        if doomed:
            client.delete(*doomed)
    time.sleep(3)
    return int(client.info("memory")["used_memory"])


def run(n: int, sample: int, form: str) -> dict[str, Any]:
    folder = ROOT / ".data" / "bench-memory-campaign"
    campaign = bench_campaign(folder, form)
    compact_from = campaigns.load(campaign).caps.compact_from
    with bench_stack(False, campaign, NO_SHEDDING, name="bench-memory") as stack:
        if stack.runs("GATEWAY_VERIFY_URL"):
            stack.start_simulator()
        stack.start_gateway(2)
        client = redis.Redis(port=stack.redis_port)
        shards = intake_shards(client)
        points = {"before": snapshot(client, sample)}
        started = time.time()
        taken = _upload(f"http://127.0.0.1:{stack.port}", stack.data, n, ["80000000", "80000001"])["taken"]
        points["after the burst"] = snapshot(client, sample)
        stack.start_workers(2)
        _, counts = asyncio.run(_wait_for_feed(stack.env["GATEWAY_DATABASE_URL"], n, started))
        wait_for_inflight_empty(client, shards)
        points["drained"] = snapshot(client, sample)
        points["after 24 h"] = {"used_memory": _past_a_day(client)}
        client.close()
    return {
        "invoices": n,
        "taken": taken,
        "fed": counts,
        "drained_s": time.time() - started,
        "caps_form": form,
        "caps_compact_from": compact_from,
        "points": points,
    }


def per_invoice(result: dict[str, Any], point: str, field: str = "bytes") -> dict[str, float]:
    """Bytes per invoice of each family at ``point``, beyond what the fresh stack held before."""
    before, at = result["points"]["before"]["families"], result["points"][point]["families"]
    return {f: (at[f][field] - before[f]["bytes"]) / result["invoices"] for f in keys.FAMILIES}


def markdown(r: dict[str, Any]) -> str:
    burst, drained = per_invoice(r, "after the burst"), per_invoice(r, "drained")
    lasting = per_invoice(r, "drained", "bytes_after_24h")
    fam = r["points"]["drained"]["families"]
    lines = [
        f"{r['invoices']:,} invoices of fresh consumers (100 a request), at {r['commit']}; fed {r['fed']['fed']:,};"
        f" the cap hashes in the {r['caps_form']} form (caps.compact_from {r['caps_compact_from']}).",
        "",
        "| family | B/invoice after the burst (no worker) | B/invoice drained | keys drained | TTL drained, median"
        " / max (s) | B/invoice after 24 h (rate windows passed) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for f in keys.FAMILIES:
        ttl = f"{fam[f]['ttl_s_median']} / {fam[f]['ttl_s_max']}" if fam[f]["ttl_s_median"] is not None else "none"
        lines.append(f"| {f} | {burst[f]:.1f} | {drained[f]:.1f} | {fam[f]['keys']:,} | {ttl} | {lasting[f]:.1f} |")
    start = r["points"]["before"]["used_memory"]
    used = {p: (v["used_memory"] - start) / r["invoices"] for p, v in r["points"].items()}
    lines.append(
        f"| **all** | {sum(burst.values()):.1f} | {sum(drained.values()):.1f} |  |  | **{sum(lasting.values()):.1f}** |"
    )
    past = f"{used['after 24 h']:.1f}" if "after 24 h" in used else ""
    lines.append(f"| used_memory growth | {used['after the burst']:.1f} | {used['drained']:.1f} |  |  | {past} |")
    notes = (
        "MEMORY USAGE (SAMPLES 0) of a sample per family x its key count; filters are preallocated (before)."
        " used_memory after 24 h: every key of a TTL under 24 h deleted, then 3 s (the keys' dictionary entries"
        " and tables, which MEMORY USAGE leaves out, are in it)."
    )
    return "\n".join([*lines, "", notes, ""])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--invoices", type=int, default=1_000_000)
    parser.add_argument("--sample", type=int, default=2000, help="keys per family whose MEMORY USAGE is read")
    parser.add_argument(
        "--caps-form", choices=("compact", "before"), default="compact", help="the cap hashes' form (see above)"
    )
    args = parser.parse_args()
    result = run(args.invoices, args.sample, args.caps_form)
    git = ["git", "-C", str(ROOT), "describe", "--always", "--dirty"]
    result["commit"] = subprocess.run(git, capture_output=True, text=True, check=True).stdout.strip()
    save("redis-memory", "Redis memory by key family", result, markdown)


if __name__ == "__main__":
    main()
