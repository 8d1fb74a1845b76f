"""Try the running dev stack as a channel and as the draw service would.

    .venv/bin/python -m loadtest.try_it [--url http://127.0.0.1:8080] [--leave-held]

Uploads a mixed batch (valid digital and legacy invoices, the sandbox endings, broken invoices), prints the
answer per invoice, uploads one again from the second channel, reads the feed until the valid invoices are
in it, recomputes the hash chain, shows one invoice's status history, the batch's changes in the channel's change
feed, and checks a receipt offline. Then an upload from Beijing is held by the risk rules, and the admin
releases it into the feed; with ``--leave-held`` it stays held, for a reviewer to release in the operator
console (docs/console.md).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from typing import Any

import channel_client
from core.feed import GENESIS, batch_sha256
from loadtest import sample
from loadtest.client import SignedClient


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--leave-held", action="store_true", help="leave the held invoice for the console")
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
    changes(channel, {r["key"] for r in resp.json()["results"] if "key" in r})
    first = resp.json()["results"][0]
    verdict = channel_client.verify(
        first["receipt"], key, "demo-channel", channel_client.keys_of(channel.keys().json())
    )
    print(f"its receipt, checked offline with GET /v1/keys: {'valid' if verdict.valid else verdict.why}")
    return 0 if not wanted - seen and verdict.valid and review(args.url, channel, rng, args.leave_held) else 1


def changes(channel: SignedClient, mine: set[str]) -> None:
    """The change feed from its start: what became of this batch's invoices, in order."""
    after, found = "", []
    while (page := channel.events(after, limit=1000).json())["events"]:
        found += [e for e in page["events"] if e["key"] in mine]
        after = page["next"]
    print(f"GET /v1/events -> {len(found)} changes of this batch's invoices, e.g.:")
    for e in found[:6]:
        print("  ", json.dumps(e, ensure_ascii=False))


def review(url: str, channel: SignedClient, rng: random.Random, leave_held: bool = False) -> bool:
    """An upload from Beijing is held by a risk rule; the admin looks at it and releases it into the feed (or
    leaves it for a reviewer in the console)."""
    admin = SignedClient(url, "demo-admin", "demo-admin-secret")
    far = {"id": f"u{rng.randrange(10**9)}", "device_id": "d-travel", "location": {"lat": 39.9, "lon": 116.4}}
    key = channel.upload([sample.invoice(rng, user=far)]).json()["results"][0]["key"]
    status = wait_for_status(channel, key, "held")
    print(f"uploaded from Beijing -> {status.get('status')} ({status.get('reason')})")
    if leave_held:
        print(f"left held for the console: {url}/console/held (then {url}/console/invoices?key={key})")
        return status.get("status") == "held"
    held = admin.request("GET", "/v1/admin/held").json()["held"]
    print(f"GET /v1/admin/held -> {len(held)} held, this one among them: {key in {h['key'] for h in held}}")
    body = json.dumps({"decision": "release", "note": "customer was travelling; receipt checked"}).encode()
    decided = admin.request("POST", f"/v1/admin/held/{key}", body, {"Content-Type": "application/json"})
    print(f"POST /v1/admin/held/{key} release -> {decided.status_code} {decided.json()}")
    final = wait_for_status(channel, key, "eligible")
    print("its history:", " -> ".join(h["status"] for h in final.get("history", [])))
    return final.get("status") == "eligible"


def wait_for_status(channel: SignedClient, key: str, wanted: str, timeout_s: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        found: dict[str, Any] = channel.status(key).json()
        if found.get("status") == wanted or time.monotonic() > deadline:
            return found
        time.sleep(0.3)


if __name__ == "__main__":
    sys.exit(main())
