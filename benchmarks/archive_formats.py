"""The archive's file format, chosen by measuring (issue 16): one table of invoices written and read back as
gzip'd JSON lines, gzip'd CSV and Parquet (pyarrow, zstd): bytes per invoice, seconds to write and to read.

    .venv/bin/python benchmarks/archive_formats.py [--invoices 200000] [--rounds 3]

The rows have the invoices table's columns and shapes (keyed hashes of 64 hex digits, a 20-digit key, two
timestamps, a null reason for most), made here in Python so the run needs no database. Each format is written
from the same rows and read back into Python dicts (what the auditor's kit would do), ``--rounds`` times in
turn; the medians are reported, and gzip of the JSON-lines bytes at the same level in the same run as the
machine's floor. Writes benchmarks/results/archive-formats.json and .md.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import save  # noqa: E402

COLUMNS = ("key", "channel", "number", "code", "issue_date", "amount_fen", "seller_tax_id", "seller_name",
           "category", "person", "user_ref", "device_ref", "status", "reason", "accepted_at", "updated_at",
           "batch_seq")  # fmt: skip


def rows(n: int) -> list[dict[str, Any]]:
    """``n`` invoices shaped as the archive's: one in three ineligible, with its reason and no batch."""
    out = []
    for g in range(n):
        person, user, device = (hashlib.sha256(f"{kind}{g}".encode()).hexdigest() for kind in "pud")
        key = f"2634{g:016d}"
        out.append(
            dict(
                zip(
                    COLUMNS,
                    (key, f"channel-{g % 7}", key, "", f"2026-03-{1 + g % 28:02d}", 10000 + g % 90000,
                     f"9134010{g % 5000:011d}", "合肥示例餐饮有限公司", "catering", person, user, device,
                     "ineligible" if g % 3 == 0 else "eligible", "below_minimum_amount" if g % 3 == 0 else None,
                     f"2026-03-01T00:00:{g % 60:02d}.{g % 1000:03d}+08:00",
                     f"2026-03-01T00:00:{g % 60:02d}.{g % 1000:03d}+08:00", None if g % 3 == 0 else 1 + g // 1000),
                    strict=True,
                )
            )
        )  # fmt: skip
    return out


def jsonl_write(data: list[dict[str, Any]], path: Path) -> None:
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=6) as f:
        for r in data:
            f.write(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n")


def jsonl_read(path: Path) -> int:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return sum(1 for line in f if json.loads(line))


def csv_write(data: list[dict[str, Any]], path: Path) -> None:
    with gzip.open(path, "wt", encoding="utf-8", newline="", compresslevel=6) as f:
        w = csv.DictWriter(f, COLUMNS)
        w.writeheader()
        w.writerows(data)


def csv_read(path: Path) -> int:
    with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
        return sum(1 for _ in csv.DictReader(f))


def parquet_write(data: list[dict[str, Any]], path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(data), path, compression="zstd")


def parquet_read(path: Path) -> int:
    import pyarrow.parquet as pq

    return len(pq.read_table(path).to_pylist())


FORMATS: dict[str, tuple[str, Callable[..., None], Callable[[Path], int], str]] = {
    "jsonl.gz": ("invoices.jsonl.gz", jsonl_write, jsonl_read, "zcat, any JSON tool, Python's standard library"),
    "csv.gz": ("invoices.csv.gz", csv_write, csv_read, "zcat, a spreadsheet; no null, no types"),
    "parquet": ("invoices.parquet", parquet_write, parquet_read, "pyarrow, DuckDB or Spark (not the stdlib)"),
}


def measure(data: list[dict[str, Any]], out: Path, rounds: int) -> tuple[float, dict[str, Any]]:
    """The floor and each format written and read ``rounds`` times in turn (the machine's noise shared):
    the floor's median seconds and each format's medians."""
    times: dict[str, dict[str, list[float]]] = {f: {"write": [], "read": []} for f in FORMATS}
    sizes: dict[str, int] = {}
    floors = []
    for _ in range(rounds):
        floors.append(floor(data))
        for fmt, (name, write, read, _opens) in FORMATS.items():
            path = out / name
            started = time.perf_counter()
            write(data, path)
            times[fmt]["write"].append(time.perf_counter() - started)
            started = time.perf_counter()
            assert read(path) == len(data)
            times[fmt]["read"].append(time.perf_counter() - started)
            sizes[fmt] = path.stat().st_size
    return statistics.median(floors), {
        fmt: {
            "bytes_per_invoice": sizes[fmt] / len(data),
            "write_s": statistics.median(times[fmt]["write"]),
            "read_s": statistics.median(times[fmt]["read"]),
            "opens_with": FORMATS[fmt][3],
        }
        for fmt in FORMATS
    }


def floor(data: list[dict[str, Any]]) -> float:
    """Seconds to gzip (level 6) the month's JSON-lines bytes already in memory."""
    raw = io.BytesIO()
    for r in data:
        raw.write(json.dumps(r, ensure_ascii=False, separators=(",", ":")).encode() + b"\n")
    started = time.perf_counter()
    gzip.compress(raw.getvalue(), compresslevel=6)
    return time.perf_counter() - started


def markdown(r: dict[str, Any]) -> str:
    lines = [
        f"{r['invoices']:,} invoices, medians of {r['rounds']} rounds in turn; the floor is gzip (level 6) of the"
        f" JSON-lines bytes in memory, median {r['gzip_floor_s']:.2f} s.\n",
        "| format | bytes/invoice | write (s) | write / floor | read (s) | opens with |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for fmt, m in r["formats"].items():
        lines.append(
            f"| {fmt} | {m['bytes_per_invoice']:.0f} | {m['write_s']:.2f} | {m['write_s'] / r['gzip_floor_s']:.1f}"
            f" | {m['read_s']:.2f} | {m['opens_with']} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--invoices", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    out = ROOT / ".data" / "bench-formats"
    out.mkdir(parents=True, exist_ok=True)
    data = rows(args.invoices)
    gzip_floor_s, formats = measure(data, out, args.rounds)
    result = {"invoices": args.invoices, "rounds": args.rounds, "gzip_floor_s": gzip_floor_s, "formats": formats}
    save("archive-formats", "The archive's file format", result, markdown)


if __name__ == "__main__":
    main()
