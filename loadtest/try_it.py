"""Try the running dev stack as a channel and as the draw service would.

    .venv/bin/python -m loadtest.try_it [--url http://127.0.0.1:8080]

Uploads a mixed batch (valid digital and legacy invoices, the sandbox endings, broken invoices), prints the
answer per invoice, uploads one again from the second channel, reads the feed until the valid invoices are
in it, recomputes the hash chain, and shows one invoice's status history.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time

from loadtest import sample
from loadtest.client import SignedClient
from workers.chain import GENESIS, batch_sha256


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    args = parser.parse_args()
    rng = random.Random()
    channel = SignedClient(args.url, "demo-channel", "demo-channel-secret")
    channel2 = SignedClient(args.url, "demo-channel-2", "demo-channel-2-secret")
    draw = SignedClient(args.url, "demo-draw", "demo-draw-secret")

    valid = [sample.invoice(rng), sample.invoice(rng), sample.legacy_invoice(rng)]
    sandbox = [sample.invoice(rng, ending=e) for e in ("999", "998", "997", "995")]
    broken = [inv for _, inv in sample.broken_invoices(rng)[:4]]
    resp = channel.upload(valid + sandbox + broken)
    print(f"POST /v1/invoices -> {resp.status_code}")
    for r in resp.json()["results"]:
        print("  ", json.dumps(r, ensure_ascii=False))
    again = channel2.upload([valid[0]])
    print(f"same invoice from demo-channel-2 -> {again.json()['results'][0]['status']}")

    wanted = {r["key"] for r in resp.json()["results"][:3]}
    seen: set[str] = set()
    prev, after, deadline = GENESIS, 0, time.monotonic() + 30
    while wanted - seen and time.monotonic() < deadline:
        for batch in draw.feed(after=after, limit=100, wait=5).json()["batches"]:
            texts = [json.dumps(e, sort_keys=True, separators=(",", ":"), ensure_ascii=False) for e in batch["entries"]]
            ok = batch["prev_sha256"] == prev and batch_sha256(prev, texts) == batch["sha256"]
            print(f"feed batch {batch['seq']}: {batch['count']} entries, chain {'ok' if ok else 'BROKEN'}")
            prev, after = batch["sha256"], batch["seq"]
            seen |= {e["key"] for e in batch["entries"]}
    print("valid invoices in the feed:", "all" if not wanted - seen else f"missing {sorted(wanted - seen)}")
    key = resp.json()["results"][0]["key"]
    print(f"GET /v1/invoices/{key} ->", json.dumps(channel.status(key).json(), ensure_ascii=False))
    return 0 if not wanted - seen else 1


if __name__ == "__main__":
    sys.exit(main())
