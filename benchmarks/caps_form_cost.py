"""The gateway's CPU for the caps' script arguments of one request, in each form of the cap hashes (pure Python).

    .venv/bin/python benchmarks/caps_form_cost.py [--invoices 100] [--runs 9] [--sellers N]

``Caps.reservations`` and ``Caps.reserve_argv`` for a request of fresh consumers, in the form before and in the
compact form (a 30-character name in base64, the seller's BLAKE2b: ratelimit/caps.py), alternating; µs a
request and an invoice, medians of ``--runs`` runs of 2,000 requests each. The sellers are fresh (the dearest
case: no seller's digest is found in the cache), or with ``--sellers N`` drawn from N of them (as shops come
back). No Redis is called.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

import msgspec
from redis.asyncio import Redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core import campaign as campaigns
from core.contract import Queued
from ratelimit.caps import Caps

ROOT = Path(__file__).resolve().parent.parent
REQUESTS = 2000


def requests(n: int, invoices: int, at_ms: int, sellers: int) -> list[list[Queued]]:
    rng = random.Random()
    return [[invoice(rng, at_ms, sellers) for _ in range(invoices)] for _ in range(n)]


def invoice(rng: random.Random, at_ms: int, sellers: int) -> Queued:
    """A fresh consumer's invoice from a fresh seller, or from one of ``sellers``."""
    key, person = f"{rng.randrange(10**20):020d}", f"{rng.getrandbits(256):064x}"
    seller = f"91340100MA{rng.randrange(sellers or 10**8):08d}"
    return Queued(key, "n", "", "2026-12-01", 10000, seller, "", "", "", person, "u", "d", "b", "c", at_ms)


def run_us(caps: Caps, batches: list[list[Queued]]) -> float:
    """µs a request of working out the calls and their arguments."""
    start = time.perf_counter()
    for batch in batches:
        for group, call in caps.reservations(batch).items():
            call.names()
            caps.reserve_argv(group, call)
    return (time.perf_counter() - start) / len(batches) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--invoices", type=int, default=100)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--sellers", type=int, default=0, help="draw the sellers from this many (0: fresh ones)")
    args = parser.parse_args()
    base = campaigns.load(ROOT / "deploy" / "campaigns" / "hefei-2026.toml")
    at_ms = int(time.time() * 1000)
    forms = {}
    for form, month in (("before", "209912"), ("compact", "200001")):
        camp = msgspec.structs.replace(base, caps=msgspec.structs.replace(base.caps, compact_from=month))
        forms[form] = Caps(Redis(), camp)  # no connection is made
    times: dict[str, list[float]] = {form: [] for form in forms}
    for _ in range(args.runs):
        for form, caps in forms.items():
            batches = requests(REQUESTS, args.invoices, at_ms, args.sellers)  # fresh consumers each run
            times[form].append(run_us(caps, batches))
    for form, us in times.items():
        med = statistics.median(us)
        print(
            f"{form:8s} {med:8.1f} µs a request of {args.invoices}, {med / args.invoices:5.2f} an invoice"
            f" (runs {', '.join(f'{u:.0f}' for u in us)})"
        )


if __name__ == "__main__":
    main()
