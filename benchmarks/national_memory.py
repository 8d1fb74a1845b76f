"""What the national platform's simulator holds an invoice's records in (workers/national_simulator.py): N
invoices' outbox rows made into the platform's records (received, verified, eligible; workers/national.py) and
taken as the relay sends them, 200 a request; bytes a record (tracemalloc), held as now (ids as digests, texts in
compressed blocks), against the same records kept as a JSON text each by id (before) and as the objects they were
decoded to (before that), in the same run.

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


class TextEach(dict[str, Any]):
    """The layout before: a JSON text each, by id."""

    def add(self, rid: str, text: bytes) -> None:
        self[rid] = text


class ObjectEach(dict[str, Any]):
    """The layout before that: the decoded record, by id."""

    def add(self, rid: str, text: bytes) -> None:
        self[rid] = msgspec.json.decode(text)


def held_bytes(invoices: int, layout: type[Any] | None) -> tuple[int, int]:
    """Bytes held and records held, the platform taking the records as it does, its ``held`` replaced by
    ``layout`` (None: as it is)."""
    gc.collect()
    tracemalloc.start()
    platform = Platform("c", "s", Control())
    if layout is not None:
        platform.held = layout()
    for records in sent(invoices):
        platform.take(records)
    gc.collect()
    size, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return size, len(platform.held)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--invoices", type=int, default=100_000)
    args = parser.parse_args()
    now, count = held_bytes(args.invoices, None)
    texts, _ = held_bytes(args.invoices, TextEach)
    objects, _ = held_bytes(args.invoices, ObjectEach)
    print(f"{count:,} records of {args.invoices:,} invoices held by the national platform's simulator:")
    print(f"  id digests, texts in compressed blocks (now): {now / count:,.0f} B a record")
    print(f"  a JSON text each, by id (before):             {texts / count:,.0f} B a record ({texts / now:.1f}x)")
    print(f"  the decoded objects, by id (before that):     {objects / count:,.0f} B a record ({objects / now:.1f}x)")


if __name__ == "__main__":
    main()
