"""What the national platform's simulator holds an invoice's records in (workers/national_simulator.py): N
invoices' outbox rows made into the platform's records (received, verified, eligible; workers/national.py) and
taken as the relay sends them, 200 a request; bytes a record (tracemalloc), kept as JSON text as now, against
the same records kept as the objects they were decoded to (as before), in the same run.

    .venv/bin/python benchmarks/national_memory.py [--invoices 100000]
"""

from __future__ import annotations

import argparse
import gc
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from workers import national
from workers.national import Row
from workers.national_simulator import Control, Platform

REQUEST = 200


def invoice_row(n: int) -> Row:
    at = "2026-12-01T20:15:31.123+08:00"
    key = f"2634{n:016d}"
    record = {
        "key": key,
        "channel": "demo-channel",
        "events": [
            {"status": "received", "at": at},
            {"status": "verified", "at": at},
            {"status": "eligible", "at": at},
        ],
        "invoice": {
            "person": f"{n:064x}",
            "seller_tax_id": f"91340100{n % 5000:010d}",
            "amount_fen": 12_850 + n % 90_000,
            "issue_date": "2026-12-01",
            "industry": "catering",
            "accepted_at": at,
        },
    }
    return Row(n, key, "invoice", record)


def sent(invoices: int) -> Any:
    """The requests' bodies, decoded as the simulator decodes them."""
    batch: list[dict[str, Any]] = []
    for n in range(invoices):
        batch.extend(national.records(invoice_row(n), "hefei-2026"))
        if len(batch) >= REQUEST:
            yield msgspec.json.decode(msgspec.json.encode(batch))
            batch = []
    if batch:
        yield msgspec.json.decode(msgspec.json.encode(batch))


def held_bytes(invoices: int, as_objects: bool) -> tuple[int, int]:
    gc.collect()
    tracemalloc.start()
    platform = Platform("c", "s", Control())
    objects: list[Any] = []
    for records in sent(invoices):
        platform.take(records)
        if as_objects:
            objects.extend(records)  # what the old simulator kept beside the ids
    if as_objects:
        platform.held = dict.fromkeys(platform.held, b"")  # only the ids of the new layout stay
    gc.collect()
    size, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return size, len(platform.held)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--invoices", type=int, default=100_000)
    args = parser.parse_args()
    texts, count = held_bytes(args.invoices, as_objects=False)
    objects, _ = held_bytes(args.invoices, as_objects=True)
    print(f"{count:,} records of {args.invoices:,} invoices held by the national platform's simulator:")
    print(f"  as JSON text (now):      {texts / count:,.0f} B a record")
    print(f"  as objects (before):     {objects / count:,.0f} B a record ({objects / texts:.1f}x)")


if __name__ == "__main__":
    main()
