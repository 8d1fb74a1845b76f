"""``gateway handover --out DIR``: the package handed to the city's archives at the campaign's end (docs/archives.md;
Chongqing: 活动结束后将备份数据移交管理部门存档; Wuhan: 整体移交相关部门存档).

Inside: every month's archive from the campaign's first month to its last (or to now), a month already
detached copied from its verified archive; every closed day's report; the final reconciliation; the campaign
file; the schema (the migrations applied); the clients (ids and roles, no secret); the public keys (archives,
receipts); the auditor's kit; a README in Chinese and English (docs/handover-README.md); and one manifest over
all of it, signed. ``python3 audit_kit.py handover DIR`` checks the lot, the feed's chain across the months
included.
"""

from __future__ import annotations

import base64
import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import asyncpg
import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from core.campaign import Campaign
from core.partitions import add_months
from core.rollup import Rollup
from core.settings import Settings
from core.stores import open_pool, open_redis
from core.times import iso_ms
from gateway import archive, audit_kit, detach, manifest, reconcile
from gateway.archive import ArchiveError
from gateway.migrate import MIGRATIONS

FORMAT = "prize-handover/1"
README = Path(__file__).resolve().parent.parent / "docs" / "handover-README.md"
KIT = Path(audit_kit.__file__)


def months(campaign: Campaign, today: dt.date) -> list[dt.date]:
    """The campaign's months, its first to its last or the current one, whichever is earlier."""
    found, month = [], campaign.starts.replace(day=1)
    while month <= min(campaign.ends, today):
        found.append(month)
        month = add_months(month, 1)
    return found


async def month_archive(
    conn: asyncpg.Connection, campaign: Campaign, month: dt.date, folder: Path, key: Ed25519PrivateKey, by: str
) -> None:
    """The month's archive into ``folder``: its recorded one if the month is detached, else a new one (a
    snapshot for the current month)."""
    detached = await conn.fetchrow(
        "SELECT path, manifest_sha256 FROM archives WHERE month = $1 AND detached_at IS NOT NULL ORDER BY id DESC",
        month,
    )
    if detached is not None:
        detach.verified(Path(detached["path"]), detached["manifest_sha256"], key)
        shutil.copytree(detached["path"], folder)
        return
    now = dt.datetime.now(dt.UTC)
    rollup = Rollup.of(campaign)
    snapshot = rollup.day(now).replace(day=1) == month
    await archive.write(conn, campaign, archive.window(month, rollup, now, snapshot), archive.prepare(folder), key, by)


def write_json(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n")


async def records(conn: asyncpg.Connection, folder: Path, settings: Settings, campaign: Campaign) -> None:
    """The package's files besides the archives: reports, clients, keys, schema, campaign, kit, README."""
    for r in await conn.fetch("SELECT day, report FROM report_days ORDER BY day"):
        write_json(folder / "reports" / f"daily-{r['day']}.json", orjson.loads(r["report"]))
    clients = await conn.fetch("SELECT client_id, role, created_at FROM api_clients ORDER BY client_id")
    write_json(folder / "clients.json", [{**dict(c), "created_at": iso_ms(c["created_at"])} for c in clients])
    keys = await conn.fetch("SELECT kid, public_key, not_before, not_after FROM receipt_keys ORDER BY not_before")
    write_json(
        folder / "keys" / "receipt-keys.json",
        [
            {
                "kid": k["kid"],
                "ed25519": base64.b64encode(k["public_key"]).decode(),
                "not_before": iso_ms(k["not_before"]),
                "not_after": None if k["not_after"] is None else iso_ms(k["not_after"]),
            }
            for k in keys
        ],
    )
    applied = await conn.fetch("SELECT name, applied_at FROM schema_migrations ORDER BY name")
    write_json(
        folder / "schema" / "applied.json",
        [{"name": a["name"], "applied_at": iso_ms(a["applied_at"])} for a in applied],
    )
    for sql in sorted(MIGRATIONS.glob("*.sql")):
        shutil.copy(sql, folder / "schema" / sql.name)
    shutil.copy(settings.campaign_file, folder / "campaign.toml")
    shutil.copy(KIT, folder / "audit_kit.py")
    shutil.copy(README, folder / "README.md")


async def final_reconciliation(settings: Settings, campaign: Campaign, folder: Path) -> None:
    """The reconciliation of the campaign's last day (or of today, if it is still running)."""
    rollup = Rollup.of(campaign)
    day = min(campaign.ends, rollup.day(dt.datetime.now(dt.UTC)))
    redis = open_redis(settings.stores)
    pool = await open_pool(settings.stores, 1, timed=False)
    try:
        found = await reconcile.reconcile(pool, redis, rollup, campaign.dedup.shards, day, 1000)
    finally:
        await pool.close()
        await redis.aclose()
    write_json(folder / "reconciliation.json", found)


def listing(folder: Path) -> list[dict[str, Any]]:
    """Every file of the package, with its SHA-256 and size."""
    return [
        {"name": str(p.relative_to(folder)), "sha256": audit_kit.sha256_file(p), "bytes": p.stat().st_size}
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    ]


async def write(
    settings: Settings, conn: asyncpg.Connection, campaign: Campaign, folder: Path, key: Ed25519PrivateKey, by: str
) -> dict[str, Any]:
    """Write the hand-over package into ``folder`` (``archive.prepare``d); returns its manifest."""
    today = Rollup.of(campaign).day(dt.datetime.now(dt.UTC))
    done = months(campaign, today)
    if not done:
        raise ArchiveError(f"the campaign {campaign.id} starts on {campaign.starts}: nothing to hand over")
    for month in done:
        await month_archive(conn, campaign, month, folder / "archives" / f"{month:%Y-%m}", key, by)
    await records(conn, folder, settings, campaign)
    await final_reconciliation(settings, campaign, folder)
    (folder / manifest.PUBLIC_KEY).write_bytes(manifest.public_pem(key))  # listed below like every file
    files = listing(folder)
    found = {
        "format": FORMAT,
        "campaign": campaign.id,
        "months": [f"{m:%Y-%m}" for m in done],
        "files": files,
        "schema_version": await conn.fetchval("SELECT max(name) FROM schema_migrations"),
        "code_version": manifest.code_version(),
        "made_at": iso_ms(dt.datetime.now(dt.UTC)),
        "made_by": by,
    }
    manifest.write_signed(folder, found, key)
    return found
