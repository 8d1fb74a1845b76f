"""The feed as a draw reads it: from the API (draw/api.py) or from an archive folder, checked link by link
(SPEC.md's chain: ``sha256`` = SHA-256 of ``prev_sha256 + "\\n" + entry_1 + ... + entry_n``), and cut into a
draw's window. The standard library only.

An archive folder holds ``*.jsonl`` files, each line one batch exactly as ``GET /v1/feed`` gives it
(``draw archive`` writes one); the batches of all its files are read in ``seq`` order.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from draw.rule import canonical

GENESIS = "0" * 64


def read_folder(folder: Path) -> list[dict[str, Any]]:
    """Every batch of the archive folder's ``*.jsonl`` files, by seq."""
    found = [
        json.loads(line)
        for path in sorted(Path(folder).glob("*.jsonl"))
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    return sorted(found, key=lambda b: b["seq"])


def write_folder(folder: Path, batches: Sequence[dict[str, Any]]) -> Path:
    """The batches as one JSON-lines file of an archive folder (named by their first and last seq)."""
    folder.mkdir(parents=True, exist_ok=True)
    first, last = (batches[0]["seq"], batches[-1]["seq"]) if batches else (0, 0)
    path = folder / f"feed-{first:08d}-{last:08d}.jsonl"
    lines = (json.dumps(b, ensure_ascii=False, separators=(",", ":")) + "\n" for b in batches)
    path.write_text("".join(lines), encoding="utf-8")
    return path


def batch_sha256(batch: dict[str, Any]) -> str:
    """What a batch's hash must be, from its ``prev_sha256`` and entries."""
    text = "\n".join([batch["prev_sha256"], *(canonical(e).decode() for e in batch["entries"])])
    return hashlib.sha256(text.encode()).hexdigest()


def broken_link(batches: Sequence[dict[str, Any]]) -> str | None:
    """The first batch whose hash or link is not right, said plainly; None when the chain holds. The first
    batch's own link is taken as it is unless it is batch 1 (genesis): a folder may start later."""
    prev = GENESIS if batches and batches[0]["seq"] == 1 else None
    expected_seq = batches[0]["seq"] if batches else 1
    for b in batches:
        if b["seq"] != expected_seq:
            return f"batch {expected_seq} is missing (the next one is {b['seq']})"
        if prev is not None and b["prev_sha256"] != prev:
            return f"batch {b['seq']}: its prev_sha256 {b['prev_sha256'][:16]}... is not batch {b['seq'] - 1}'s hash"
        if batch_sha256(b) != b["sha256"]:
            return (
                f"batch {b['seq']}: its entries hash to {batch_sha256(b)[:16]}..., not its sha256 {b['sha256'][:16]}..."
            )
        if b["count"] != len(b["entries"]):
            return f"batch {b['seq']}: {len(b['entries'])} entries, but its count says {b['count']}"
        prev, expected_seq = b["sha256"], b["seq"] + 1
    return None


def sealed_at(batch: dict[str, Any]) -> dt.datetime:
    return dt.datetime.fromisoformat(batch["sealed_at"])


def window(batches: Sequence[dict[str, Any]], start: dt.datetime, end: dt.datetime) -> list[dict[str, Any]]:
    """The batches sealed from ``start`` (included) to ``end`` (excluded)."""
    return [b for b in batches if start <= sealed_at(b) < end]


def closed(batches: Sequence[dict[str, Any]], end: dt.datetime) -> bool:
    """Whether these batches show the window closed: one of them was sealed at or after its end."""
    return any(sealed_at(b) >= end for b in batches)
