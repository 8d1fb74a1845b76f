"""What each of an upload's Redis scripts costs Redis, per invoice, in instructions (not seconds).

    .venv/bin/python benchmarks/redis_scripts.py [--requests 40] [--invoices 100] [--against REV]

The three scripts a 100-invoice upload runs (the rate limits with the nonce, the campaign caps, the claim and
enqueue) get their KEYS and ARGV from the gateway's own classes (``RateLimiter``, ``Caps``, ``Claimer``,
handed a recorder instead of a Redis client), for fresh invoices of fresh consumers as the pipeline benchmark
sends. Each script is then replayed on a private redis-server run under ``valgrind --tool=callgrind``, once
with 5 requests and once with 5 + ``--requests``: the difference of the two totals, divided by the extra
invoices, is Redis's own work per invoice, start-up and script loading cancelled out.

``--against REV`` measures the scripts of another revision too (a temporary git worktree, this same harness)
and puts both columns side by side.

Instructions are counted, not timed, because this machine is shared and noisy: the same count comes back run
after run whatever else is running, so a change to a script shows as a number that moved, not as noise.
Writes benchmarks/results/redis_scripts.json and .md and prints the table.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import msgspec
import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import save, worktree  # noqa: E402
from benchmarks.loadgen import Invoices  # noqa: E402
from core import campaign as campaigns  # noqa: E402
from core import contract, keys  # noqa: E402
from core.contract import Queued  # noqa: E402
from dedup.claim import Claimer, Item  # noqa: E402
from deploy import devstack  # noqa: E402
from gateway.model import Upload  # noqa: E402
from gateway.validate import check  # noqa: E402
from ratelimit.caps import Caps  # noqa: E402
from ratelimit.limits import Nonce, RateLimiter  # noqa: E402

INVOICES = 100  # per request, by default (--invoices)
BLOOM_BLOCKS = 1 << 16  # one generation of 2 MiB: the script's work does not depend on the size
CHANNEL = "demo-channel"


class Recorder:
    """Stands in for the Redis client: each registered script records its calls and answers ``reply``, shaped
    as the real script's (everything let through, new, claimed)."""

    def __init__(self, reply: list[Any]) -> None:
        self.reply = reply
        self.calls: list[tuple[str, list[Any], list[Any]]] = []
        self.texts: dict[str, str] = {}

    def register_script(self, text: str) -> Any:
        async def call(keys: list[Any], args: list[Any], client: Any = None) -> Any:
            self.calls.append((text, list(keys), list(args)))
            return self.reply

        call.sha = hashlib.sha1(text.encode()).hexdigest()  # type: ignore[attr-defined]
        call.script = text  # type: ignore[attr-defined]
        self.texts[call.sha] = text  # type: ignore[attr-defined]
        return call

    async def execute_command(self, name: str, sha: str, count: int, *rest: Any) -> Any:
        """EVALSHA, as core/lua.py's ``run`` sends a lone call."""
        assert name == "EVALSHA", name
        self.calls.append((self.texts[sha], list(rest[:count]), list(rest[count:])))
        return self.reply


def requests(
    count: int, invoices: int, campaign: campaigns.Campaign
) -> dict[str, list[tuple[str, list[Any], list[Any]]]]:
    """The script calls of ``count`` requests of ``invoices`` invoices, by stage."""
    inv, now = Invoices(), int(time.time() * 1000)
    recorders = {
        "rate limits": Recorder([0, 1, 1, *([0] * invoices)]),
        "caps": Recorder([b"new"] * invoices),
        "claim": Recorder([b""] * invoices),
    }
    limiter = RateLimiter(recorders["rate limits"], campaign.limits)  # type: ignore[arg-type]
    caps = Caps(recorders["caps"], campaign)  # type: ignore[arg-type]
    claimer = Claimer(recorders["claim"], None, 1)  # type: ignore[arg-type]

    async def build() -> None:
        for r in range(count):
            upload = msgspec.json.decode(inv.body(invoices), type=Upload)
            queued = [check(i, campaign, CHANNEL, "bench-secret", now) for i in upload.invoices]
            assert all(isinstance(q, Queued) for q in queued)
            qs: list[Queued] = queued  # type: ignore[assignment]
            nonce = Nonce(keys.nonce(CHANNEL, f"bench-{r}"), b"token", 600)
            await limiter.decide(CHANNEL, invoices, qs, nonce)
            await caps.reserve(qs)
            items = [Item(q.key, contract.pack(q), q.person, *industry(q)) for q in qs]
            await claimer.claim_and_enqueue(CHANNEL, now, f"request-{r}", items, *tally(upload.invoices, campaign))

    asyncio.run(build())
    return {stage: rec.calls for stage, rec in recorders.items()}


def industry(q: Queued) -> tuple[str, ...]:
    """The invoice's industry, as the gateway hands the claim script (a revision before tallies takes none)."""
    return (campaign_industry(q.category),) if "industry" in Item._fields else ()


@functools.cache
def campaign_industry(category: str) -> str:
    return campaigns.load(ROOT / "deploy" / "campaigns" / "hefei-2026.toml").eligibility.industry(category)


def tally(invoices: list[Any], campaign: campaigns.Campaign) -> tuple[bytes, ...]:
    """The request's tally as the gateway makes it (gateway/tally.py), for a revision that has one."""
    try:
        from gateway.tally import pre_claim
    except ImportError:
        return ()
    return (pre_claim(invoices, {}, campaign, False)[0],)


def instructions(calls: list[tuple[str, list[Any], list[Any]]], folder: Path) -> int:
    """Instructions redis-server ran, from start to shutdown, replaying ``calls`` (callgrind's total)."""
    port = devstack.free_port()
    out = folder / f"callgrind.{port}"
    argv = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "redis-server", "--port", str(port)]
    server = subprocess.Popen(
        [*argv, "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    client = redis.Redis(port=port)
    try:
        devstack.wait_until("redis under valgrind", lambda: devstack.redis_pong(port))
        client.hset(keys.bloom_meta(0), mapping={"k": 7, "sizes": str(BLOOM_BLOCKS), "ready": "1"})
        client.setrange(keys.bloom(0, 1), BLOOM_BLOCKS * 32 - 1, b"\0")
        shas: dict[str, str] = {}
        for text, k, a in calls:  # as the gateway calls them: EVALSHA (EVAL would hash the script every time)
            sha = shas.get(text) or shas.setdefault(text, client.script_load(text))
            client.evalsha(sha, len(k), *k, *a)
        client.shutdown(nosave=True)
    except redis.ConnectionError:
        pass  # the shutdown closes the connection
    finally:
        server.wait(timeout=120)
        client.close()
    found = re.search(r"^(?:summary|totals): (\d+)", out.read_text(), re.M)
    assert found, f"no total in {out}"
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--invoices", type=int, default=INVOICES, help="per request (1: a single-invoice upload)")
    parser.add_argument("--against", metavar="REV", help="also measure this git revision's scripts")
    parser.add_argument("--json", action="store_true", help="print the counts as JSON only (used by --against)")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is needed: apt-get install valgrind")
    counts = measure(args.requests, args.invoices)
    if args.json:
        print(json.dumps(counts))
        return
    result: dict[str, Any] = {"invoices_per_request": args.invoices, "requests": args.requests, "per_invoice": counts}
    if args.against:
        theirs = against(args.against, args.requests, args.invoices)
        result["against"] = {"revision": args.against, "per_invoice": theirs}
    name = "redis_scripts" if args.invoices == INVOICES else f"redis_scripts-{args.invoices}"
    save(name, "Redis's own work per invoice, by script", result, markdown)


def measure(extra_requests: int, invoices: int) -> dict[str, int]:
    campaign = campaigns.load(ROOT / "deploy" / "campaigns" / "hefei-2026.toml")
    base = 5
    calls = requests(base + extra_requests, invoices, campaign)
    counts = {}
    with tempfile.TemporaryDirectory() as tmp:
        for stage, staged in calls.items():
            few, many = instructions(staged[:base], Path(tmp)), instructions(staged, Path(tmp))
            counts[stage] = round((many - few) / (extra_requests * invoices))
            print(f"{stage}: {counts[stage]:,} instructions per invoice", file=sys.stderr)
    return counts


def against(revision: str, extra_requests: int, invoices: int) -> dict[str, int]:
    """The same harness run in a worktree of ``revision`` (with this environment's packages)."""
    with worktree(revision) as tree:
        shutil.copy(__file__, tree / "benchmarks" / "redis_scripts.py")
        argv = [sys.executable, str(tree / "benchmarks" / "redis_scripts.py"), "--json"]
        argv += ["--requests", str(extra_requests), "--invoices", str(invoices)]
        out = subprocess.run(argv, check=True, capture_output=True, text=True)
        counts: dict[str, int] = json.loads(out.stdout.strip().splitlines()[-1])
        return counts


def markdown(r: dict[str, Any]) -> str:
    stages, ours = list(r["per_invoice"]), r["per_invoice"]
    theirs = r.get("against", {}).get("per_invoice")
    n_per = r["invoices_per_request"]
    head = f"| script ({n_per}-invoice requests, fresh consumers) | Redis instructions per invoice |"
    lines = [head, "| --- | --- |"]
    if theirs:
        lines = [head + f" at {r['against']['revision']} | change |", "| --- | --- | --- | --- |"]
    for stage in [*stages, "all three"]:
        n = sum(ours.values()) if stage == "all three" else ours[stage]
        row = f"| {stage} | {n:,} |"
        if theirs:
            before = sum(theirs.values()) if stage == "all three" else theirs[stage]
            row += f" {before:,} | {n / before - 1:+.0%} |"
        lines.append(row)
    return "\n".join([*lines, "", "valgrind --tool=callgrind on redis-server; instructions, not time.", ""])


if __name__ == "__main__":
    main()
