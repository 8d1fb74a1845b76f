"""The archive commands of ``gateway`` (docs/archives.md):

gateway archive --month YYYY-MM --out DIR [--by NAME]   a closed month
gateway archive --through-today --out DIR [--by NAME]   the open month as it is now (a snapshot)
gateway archive verify DIR [--key PUBLIC.pem]           everything, without a database (the auditor's kit)
gateway archive detach --month YYYY-MM                  the month's partitions, after its archive verifies
gateway archive drop --month YYYY-MM                    the detached partitions, after the retention period
gateway archive new-key                                 a new archive signing key (PEM)
gateway handover --out DIR [--by NAME]                  the campaign's hand-over package
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg

from core.campaign import Campaign
from core.rollup import Rollup
from core.settings import Settings
from gateway import archive, audit_kit, detach, handover, manifest, receipts
from gateway.archive import ArchiveError


def month_arg(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text + "-01")
    except ValueError as exc:
        raise argparse.ArgumentTypeError("a month is YYYY-MM") from exc


def add_parsers(sub: Any) -> None:
    """``archive`` (with its actions) and ``handover``, on the ``gateway`` command's subparsers."""
    arch = sub.add_parser("archive", help="archive a month; verify, detach or drop archived months (docs/archives.md)")
    arch.add_argument("--month", type=month_arg, help="YYYY-MM: a closed month")
    arch.add_argument("--through-today", action="store_true", help="a snapshot of the open month, as it is now")
    arch.add_argument("--out", type=Path, help="the archive's folder, new or empty (default: in GATEWAY_ARCHIVE_DIR)")
    arch.add_argument("--by", help="who makes it (default: account@host)")
    actions = arch.add_subparsers(dest="action")
    verify = actions.add_parser("verify", help="check an archive's files, signature and feed chain (no database)")
    verify.add_argument("dir", type=Path)
    verify.add_argument("--key", type=Path, help="the published public key (PEM); else the archive's own")
    for name, what in (("detach", "detach a month's partitions"), ("drop", "drop a month's detached partitions")):
        one = actions.add_parser(name, help=f"{what}, once its archive verifies")
        one.add_argument("--month", type=month_arg, required=True, dest="action_month")
    actions.add_parser("new-key", help="print a new Ed25519 archive signing key (PEM)")
    hand = sub.add_parser("handover", help="the hand-over package at the campaign's end (docs/archives.md)")
    hand.add_argument("--out", type=Path, help="the package's folder, new or empty (default: in GATEWAY_ARCHIVE_DIR)")
    hand.add_argument("--by", help="who makes it (default: account@host)")


def run(args: argparse.Namespace, settings: Settings, campaign: Campaign) -> int:
    """Carry out an ``archive`` or ``handover`` command; its exit status (1 with the reason on stderr)."""
    try:
        return _run(args, settings, campaign)
    except ArchiveError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def verify(folder: Path, key: Path | None) -> int:
    """``gateway archive verify DIR``: the auditor's kit on one archive (no setting, no database)."""
    report = audit_kit.Report()
    try:
        audit_kit.check_archive(folder, key, report)
    except (OSError, ValueError, KeyError) as exc:  # no manifest, a file that is not gzip'd JSON lines...
        report.fail(f"{folder}: not readable as an archive: {exc}")
    print("OK: the archive verifies" if not report.problems else f"NOT OK: {report.problems[0]}")
    return 1 if report.problems else 0


def _run(args: argparse.Namespace, settings: Settings, campaign: Campaign) -> int:
    if args.command == "handover":
        today = Rollup.of(campaign).day(dt.datetime.now(dt.UTC))
        folder = archive.prepare(args.out or Path(settings.archive.dir) / f"handover-{campaign.id}-{today}")
        key = manifest.load_key(settings.archive)
        by = args.by or manifest.operator()
        found = _with_conn(settings, lambda c: handover.write(settings, c, campaign, folder, key, by))
        print(f"hand-over package of {campaign.id} in {folder}: {len(found['files'])} files, months {found['months']}")
        return 0
    if args.action == "new-key":
        sys.stdout.write(receipts.new_key_pem().decode())
        return 0
    key = manifest.load_key(settings.archive)
    if args.action in ("detach", "drop"):
        act = detach.detach if args.action == "detach" else detach.drop
        for line in _with_conn(settings, lambda c: act(c, campaign, args.action_month, key)):
            print(line)
        return 0
    return _archive(args, settings, campaign, key)


def _archive(args: argparse.Namespace, settings: Settings, campaign: Campaign, key: Any) -> int:
    if (args.month is None) == (not args.through_today):
        raise ArchiveError("give either --month YYYY-MM or --through-today")
    now = dt.datetime.now(dt.UTC)
    rollup = Rollup.of(campaign)
    month = args.month or rollup.day(now).replace(day=1)
    w = archive.window(month, rollup, now, snapshot=args.through_today)
    name = f"{month:%Y-%m}" if w.kind == "closed" else f"{month:%Y-%m}-snapshot-{now:%Y%m%dT%H%M%SZ}"
    folder = archive.prepare(args.out or Path(settings.archive.dir) / name)
    found = _with_conn(settings, lambda c: archive.write(c, campaign, w, folder, key, args.by or manifest.operator()))
    rows = sum(f["rows"] for f in found["files"])
    feed = found["feed"]
    print(f"{w.kind} archive of {found['month']} in {folder}: {len(found['files'])} files, {rows} rows,")
    print(f"feed batches {feed['first_seq']} to {feed['last_seq']}; check it: gateway archive verify {folder}")
    return 0


def _with_conn(settings: Settings, act: Callable[[asyncpg.Connection], Awaitable[Any]]) -> Any:
    async def go() -> Any:
        conn = await asyncpg.connect(settings.stores.database_url)
        try:
            return await act(conn)
        finally:
            await conn.close()

    return asyncio.run(go())
