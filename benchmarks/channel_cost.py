"""What issue 15 costs on the fast paths, each beside what it replaced, in the same run (issue 15):

    .venv/bin/python benchmarks/channel_cost.py [--rounds 7]

1. The upload's validation (the rule table, amounts read as written, NFKC names) against main's, loaded from git
   (``git show main:gateway/...``): µs per invoice for a 100-invoice request, rounds alternating.
2. Receipts: one Ed25519 signature over a Merkle tree per request against main's HMAC per invoice (and, for
   scale, an Ed25519 signature per invoice, the design not taken).
3. The sink (workers/sink.write, 5,000-row transactions: COPY, upsert, events, feed entries): rows/s into a
   database with main's schema (migrations up to 006), one with the change feed's columns, index and NOTIFY
   trigger (021), and this branch's (022: the index of a user's invoices too), rounds alternating, on one
   PostgreSQL; each round's ratio to main's in that round, whose median is the figure to quote.

Writes benchmarks/results/channel-cost.json and .md and prints the table. Medians; the machine is shared.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import importlib
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402

from benchmarks.common import bench_stack, save  # noqa: E402
from core import campaign as campaigns  # noqa: E402
from gateway import parse, receipts, validate  # noqa: E402
from gateway.migrate import migrate  # noqa: E402
from loadtest import sample  # noqa: E402

BASE = "main"
MAIN_SCHEMA = 6  # main's last migration
EVENTS_SCHEMA = 21  # with the change feed's, without the index of a user's invoices (022)
NOW_MS = 1772366400000


def main_gateway(folder: Path) -> Any:
    """main's model, parse and validate modules as the package ``gateway_main``."""
    package = folder / "gateway_main"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name in ("model", "validate"):
        text = subprocess.run(
            ["git", "show", f"{BASE}:gateway/{name}.py"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout
        (package / f"{name}.py").write_text(text.replace("from gateway.model", "from gateway_main.model"))
    sys.path.insert(0, str(folder))
    return importlib.import_module("gateway_main.validate"), importlib.import_module("gateway_main.model")


def alternate(rounds: int, **runs: Callable[[], float]) -> dict[str, Any]:
    """Each run once per round, in turn; per run its median and rounds."""
    seen: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            seen[name].append(run())
    return {name: {"median": statistics.median(v), "rounds": [round(x, 2) for x in v]} for name, v in seen.items()}


def per_invoice_us(work: Callable[[], object], invoices: int, repeat: int = 30) -> Callable[[], float]:
    def run() -> float:
        started = time.perf_counter()
        for _ in range(repeat):
            work()
        return (time.perf_counter() - started) / repeat / invoices * 1e6

    return run


def validation(rounds: int) -> dict[str, Any]:
    campaign = campaigns.load(ROOT / "deploy" / "campaigns" / "hefei-2026.toml")
    rng = random.Random(15)
    body = orjson.dumps({"invoices": [sample.invoice(rng) for _ in range(100)]})
    with tempfile.TemporaryDirectory() as tmp:
        old_validate, old_model = main_gateway(Path(tmp))
        import msgspec

        old_items = list(msgspec.json.decode(body, type=old_model.Upload).invoices)
        new_items = parse.decode(body, False, 500)
        return alternate(
            rounds,
            main=per_invoice_us(lambda: old_validate.validate(old_items, campaign, "c", "k" * 16, NOW_MS), 100),
            branch=per_invoice_us(lambda: validate.validate(new_items, campaign, "c", "k" * 16, NOW_MS), 100),
        )


def receipt_costs(rounds: int) -> dict[str, Any]:
    keys = [f"26341{i:015d}" for i in range(100)]
    signer = receipts.Signer(Ed25519PrivateKey.generate())
    private = Ed25519PrivateKey.generate()
    return alternate(
        rounds,
        main_hmac_per_invoice=per_invoice_us(
            lambda: [receipts.legacy_receipt("s" * 24, k, "c", NOW_MS) for k in keys], 100
        ),
        merkle_one_signature=per_invoice_us(lambda: signer.receipts("c", [(k, NOW_MS) for k in keys]), 100),
        ed25519_per_invoice=per_invoice_us(lambda: [private.sign(k.encode()) for k in keys], 100, repeat=5),
        merkle_one_invoice=per_invoice_us(lambda: signer.receipts("c", [(keys[0], NOW_MS)]), 1, repeat=300),
    )


async def sink_rows(dsns: dict[str, str], rounds: int, batch_rows: int = 5000, batches: int = 4) -> dict[str, Any]:
    import asyncpg

    from core.contract import Queued
    from workers import sink
    from workers.judge import Judgement

    pools = {
        name: await asyncpg.create_pool(dsn, min_size=1, max_size=1, init=sink.prepare) for name, dsn in dsns.items()
    }
    counter = 0
    now = dt.datetime.now(dt.UTC)

    def batch() -> list[sink.Judged]:
        nonlocal counter
        found = []
        for _ in range(batch_rows):
            counter += 1
            q = Queued(f"2634199{counter:013d}", f"2634199{counter:013d}", "", "2026-06-01", 18800,
                       "91340104000000001X", "合肥示例餐饮有限公司", "catering", "", f"p{counter:062d}",
                       f"u{counter % 50_000}", f"d{counter}", "b", f"bench-{counter % 4}", NOW_MS)  # fmt: skip
            found.append(sink.Judged(q, Judgement("verified"), now))
        return found

    seen: dict[str, list[float]] = {name: [] for name in dsns}
    try:
        for _ in range(rounds):
            for name, pool in pools.items():
                work = [batch() for _ in range(batches)]
                started = time.perf_counter()
                for b in work:
                    await sink.write(pool, b, [])
                seen[name].append(batch_rows * batches / (time.perf_counter() - started))
    finally:
        for pool in pools.values():
            await pool.close()
    found: dict[str, Any] = {
        name: {"median": statistics.median(v), "rounds": [round(x) for x in v]} for name, v in seen.items()
    }
    for name in ("events_schema", "branch_schema"):  # paired with main's in the same round: noise cancels
        found[name]["paired_ratio"] = statistics.median(
            b / m for b, m in zip(seen[name], seen["main_schema"], strict=True)
        )
    return found


def sink(rounds: int) -> dict[str, Any]:
    with bench_stack(full=False, name="channel-cost") as stack:
        base = stack.env["GATEWAY_DATABASE_URL"]

        async def prepare() -> dict[str, str]:
            import asyncpg

            admin = await asyncpg.connect(base)
            dsns = {}
            try:
                for name in ("main_schema", "events_schema", "branch_schema"):
                    await admin.execute(f"DROP DATABASE IF EXISTS {name}")
                    await admin.execute(f"CREATE DATABASE {name}")
                    dsns[name] = base.rsplit("/", 1)[0] + "/" + name
            finally:
                await admin.close()
            for name, last in (("main_schema", MAIN_SCHEMA), ("events_schema", EVENTS_SCHEMA)):
                with tempfile.TemporaryDirectory() as tmp:
                    for path in sorted((ROOT / "deploy" / "migrations").glob("*.sql")):
                        if int(path.name[:3]) <= last:
                            shutil.copy(path, tmp)
                    await migrate(dsns[name], Path(tmp))
            await migrate(dsns["branch_schema"])
            return dsns

        dsns = asyncio.run(prepare())
        return asyncio.run(sink_rows(dsns, rounds))


def _row(what: str, main: dict[str, Any], branch: dict[str, Any], fmt: str = ".2f", note: str = "") -> str:
    ratio = branch["median"] / main["median"]
    return (
        f"| {what} | {main['median']:{fmt}} | {branch['median']:{fmt}}{note} | {ratio:.2f}"
        f" | {main['rounds']} / {branch['rounds']} |"
    )


def markdown(r: dict[str, Any]) -> str:
    v, rc, s = r["validation_us_per_invoice"], r["receipts_us_per_invoice"], r["sink_rows_per_s"]
    per_invoice = rc["ed25519_per_invoice"]["median"]
    lines = [
        "| what | main | this branch | ratio | rounds (main / branch) |",
        "| --- | --- | --- | --- | --- |",
        _row("validation of a 100-invoice request, µs per invoice", v["main"], v["branch"]),
        _row(
            "receipts of a 100-invoice request, µs per invoice (HMAC each / one Ed25519 over a Merkle tree)",
            rc["main_hmac_per_invoice"],
            rc["merkle_one_signature"],
        ),
        _row("receipt of a 1-invoice request, µs", rc["main_hmac_per_invoice"], rc["merkle_one_invoice"]),
        f"| (not taken) an Ed25519 signature per invoice, µs per invoice | | {per_invoice:.2f} | | |",
        _row(
            "sink, 5,000-row transactions, rows/s: the change feed (021)", s["main_schema"], s["events_schema"], ",.0f"
        ),
        _row("sink: the change feed and a user's invoices' index (022)", s["main_schema"], s["branch_schema"], ",.0f"),
        f"| sink, median of each round's ratio to main's | | 021: {s['events_schema']['paired_ratio']:.2f},"
        f" 022: {s['branch_schema']['paired_ratio']:.2f} | | |",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    result = {
        "validation_us_per_invoice": validation(args.rounds),
        "receipts_us_per_invoice": receipt_costs(args.rounds),
        "sink_rows_per_s": sink(args.rounds),
    }
    save("channel-cost", "Issue 15 on the fast paths, beside main", result, markdown)


if __name__ == "__main__":
    main()
