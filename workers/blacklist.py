"""The blacklist (黄牛库) of persons, devices and sellers, loaded from a CSV file by ``gateway-worker blacklist``.

Each line: ``kind,value,reason``. A person is named by an 18-digit resident ID number, or by ``channel:user``
for one known only by a channel's user id; a device by ``channel:device``; a seller by its tax id. Persons and
devices are stored as the same keyed hashes the gateway gives them, so the table holds no personal data and
matches the invoices' ``person`` and ``device_ref`` columns.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

import asyncpg

from core import checks
from core.hashing import keyed_hash

KINDS = ("person", "device", "seller")

UPSERT = """
INSERT INTO blacklist (kind, value, reason, added_by)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])
ON CONFLICT (kind, value) DO UPDATE SET reason = excluded.reason, added_by = excluded.added_by, added_at = now()
"""


class BadLine(ValueError):
    pass


def ref(kind: str, value: str, person_secret: str) -> str:
    """What the blacklist stores for one entry (raises BadLine for a malformed one)."""
    value = value.strip()
    if kind == "seller":
        if (problem := checks.uscc_problem(value)) is not None:
            raise BadLine(f"seller {value!r}: {problem}")
        return value
    if kind == "person" and ":" not in value:
        if (problem := checks.id_number_problem(value)) is not None:
            raise BadLine(f"person: {problem}")
        return keyed_hash(person_secret, "id:" + value)
    channel, sep, local = value.partition(":")
    if kind not in ("person", "device") or not (sep and channel and local):
        raise BadLine(f"the kind is one of {', '.join(KINDS)}; a device is channel:device")
    return keyed_hash(person_secret, f"{'user' if kind == 'person' else 'device'}:{channel}:{local}")


def read(path: Path, person_secret: str) -> list[tuple[str, str, str]]:
    """The file's entries as (kind, stored value, reason), an entry named twice once (its last line); every bad
    line is reported, none loaded."""
    entries, problems = [], []
    with open(path, newline="", encoding="utf-8") as f:
        for n, row in enumerate(csv.reader(f), start=1):
            if not row or row[0].startswith("#"):
                continue
            try:
                if len(row) != 3 or not row[2].strip():
                    raise BadLine("kind,value,reason")
                entries.append((row[0].strip(), ref(row[0].strip(), row[1], person_secret), row[2].strip()))
            except BadLine as exc:
                problems.append(f"line {n}: {exc}")  # never the value itself: it may be an ID number
    if problems:
        raise BadLine("\n".join(problems))
    return list({(kind, value): (kind, value, reason) for kind, value, reason in entries}.values())  # last wins


async def load(conn: asyncpg.Connection | asyncpg.Pool, entries: Iterable[tuple[str, str, str]], by: str) -> int:
    rows = list(entries)
    await conn.execute(UPSERT, [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], [by] * len(rows))
    return len(rows)
