"""The auditor's kit: checks the draw feed's hash chain and our archives with Python's standard library alone
(docs/audit.md, in Chinese and English). It imports nothing of the gateway's: copy this one file anywhere.

    python3 audit_kit.py archive DIR [--key PUBLIC.pem]      a month's archive (gateway archive)
    python3 audit_kit.py handover DIR [--key PUBLIC.pem]     a hand-over package, every month's archive in it
    python3 audit_kit.py feed URL --client-id ID --secret S [--archive DIR]   the live feed (role draw)

It recomputes every batch's SHA-256 from its entries (SPEC.md: prev_sha256 + "\\n" + entry_1 + ... + entry_n),
checks each batch's link to the one before, each archive file's SHA-256 and row count against the manifest,
and names the first divergence exactly: the file, the batch, the entry. The manifest's Ed25519 signature is
checked when the `cryptography` package is installed, and the kit says so when it is not. Exit status: 0 when
everything checked is right, 1 otherwise.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import hmac
import itertools
import json
import secrets
import sys
import time
import urllib.request
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

GENESIS = "0" * 64
FEED_FILES = ("feed_batches.jsonl.gz", "feed_entries.jsonl.gz")
MANIFEST, SIGNATURE, PUBLIC_KEY = "manifest.json", "manifest.sig", "archive-key.pub"


class Report:
    """What was checked, and the problems found; the first one is the first divergence."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def ok(self, what: str) -> None:
        print(f"ok      {what}")

    def fail(self, what: str) -> None:
        print(f"FAILED  {what}")
        self.problems.append(what)

    def note(self, what: str) -> None:
        print(f"note    {what}")


def canonical(entry: Any) -> str:
    """An entry's JSON: keys sorted by code point, no spaces, non-ASCII as itself."""
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def batch_sha256(prev: str, bodies: list[str]) -> str:
    return hashlib.sha256("\n".join([prev, *bodies]).encode()).hexdigest()


def rows(path: Path) -> Iterator[dict[str, Any]]:
    """The rows of an archive file: gzip'd JSON lines, one object per row."""
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            yield json.loads(line)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def check_signature(folder: Path, key_file: Path | None, report: Report) -> None:
    """The manifest's Ed25519 signature, with the published key (--key) or else the archive's own."""
    try:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_pem_public_key
    except ImportError:
        report.note("signature NOT checked: the `cryptography` package is not installed (pip install cryptography)")
        return
    pem = (key_file or folder / PUBLIC_KEY).read_bytes()
    public = load_pem_public_key(pem)
    # public_bytes(Raw, Raw), not public_bytes_raw(): Debian's cryptography (38) predates the latter.
    kid = hashlib.sha256(public.public_bytes(Encoding.Raw, PublicFormat.Raw)).hexdigest()[:16]
    try:
        signature = base64.b64decode((folder / SIGNATURE).read_text().strip())
        public.verify(signature, (folder / MANIFEST).read_bytes())  # type: ignore[call-arg, union-attr]
    except (InvalidSignature, ValueError, OSError):
        report.fail(f"{folder / MANIFEST}: its signature does not verify with key {kid}")
        return
    whose = "the published key" if key_file else "the archive's own key (compare its id with the published one)"
    report.ok(f"{folder / MANIFEST}: signed by key {kid}, {whose}")


def check_files(folder: Path, manifest: dict[str, Any], report: Report) -> None:
    """Each file: present, its SHA-256 and its row count as the manifest says; no file the manifest omits. The
    problems found are reported; a file that fails is not read further."""
    listed = {f["name"] for f in manifest["files"]}
    for extra in sorted(p.name for p in folder.iterdir() if p.name not in listed | {MANIFEST, SIGNATURE, PUBLIC_KEY}):
        report.fail(f"{folder / extra}: a file the manifest does not list")
    for f in manifest["files"]:
        path = folder / f["name"]
        if not path.is_file():
            report.fail(f"{path}: missing")
        elif sha256_file(path) != f["sha256"]:
            report.fail(f"{path}: its SHA-256 differs from the manifest's (the file changed)")
        elif "rows" in f and (n := sum(1 for _ in rows(path))) != f["rows"]:
            report.fail(f"{path}: {n} rows, the manifest says {f['rows']}")
        else:
            report.ok(f"{path}: SHA-256 and {f.get('rows', 'its')} rows as in the manifest")


Entries = Iterator[tuple[int, list[dict[str, Any]]]]


def by_batch(entries: Iterable[dict[str, Any]]) -> Entries:
    """Entries in batch order (as an archive holds them), a batch at a time: memory holds one batch, not a month."""
    return ((seq, list(group)) for seq, group in itertools.groupby(entries, key=lambda e: e["batch_seq"]))


def check_chain(
    batches: Iterable[dict[str, Any]], entries: Entries, prev: str | None, where: str, report: Report
) -> Any:
    """Recompute each batch from its entries and its link to the one before; returns the last batch's hash."""
    pending = next(entries, None)
    for b in batches:
        seq, mine = b["seq"], []
        if pending is not None and pending[0] == seq:
            mine, pending = pending[1], next(entries, None)
        if prev is not None and b["prev_sha256"] != prev:
            report.fail(f"{where}: batch {seq}: prev_sha256 {b['prev_sha256'][:16]}... is not batch {seq - 1}'s hash")
        for i, e in enumerate(mine, 1):
            body = e["body"]
            if canonical(json.loads(body)) != body or json.loads(body).get("key") != e["key"]:
                report.fail(f"{where}: batch {seq}, entry {i} (id {e.get('id')}): its text is not its canonical JSON")
        if len(mine) != b["count"]:
            report.fail(f"{where}: batch {seq}: {len(mine)} entries, the batch says {b['count']}")
        elif batch_sha256(b["prev_sha256"], [e["body"] for e in mine]) != b["sha256"]:
            report.fail(f"{where}: batch {seq}: its entries do not hash to its sha256 (an entry changed)")
        prev = b["sha256"]
    if pending is not None:
        report.fail(f"{where}: entries of batch {pending[0]}, which no batch of the archive names (or out of order)")
    return prev


def check_archive(folder: Path, key_file: Path | None, report: Report, prev: str | None = None) -> str | None:
    """Everything of one month's archive; returns its last batch's hash (for the next month's first link)."""
    m = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    report.note(f"{folder}: {m['kind']} archive of {m['month']} ({m['campaign']}), made {m['made_at']}")
    check_signature(folder, key_file, report)
    check_files(folder, m, report)
    feed = m["feed"]
    if any(str(folder / name) in p for p in report.problems for name in FEED_FILES):
        report.fail(f"{folder}: the feed's chain is not checked: its files failed")
        return prev
    entries = by_batch(rows(folder / "feed_entries.jsonl.gz"))
    seqs: list[int] = []  # the batches' numbers, noted as they stream by

    def batches() -> Iterator[dict[str, Any]]:
        for b in rows(folder / "feed_batches.jsonl.gz"):
            seqs.append(b["seq"])
            yield b

    where = str(folder / "feed_entries.jsonl.gz")
    last = check_chain(batches(), entries, feed["first_prev_sha256"] if prev is None else prev, where, report)
    named = (feed["first_seq"], feed["last_seq"], feed["last_sha256"])
    if seqs and (seqs[0], seqs[-1], last) != named:
        report.fail(f"{folder}: the feed batches are not those the manifest names ({named[0]} to {named[1]})")
    elif seqs:
        report.ok(f"{folder}: feed batches {named[0]} to {named[1]} recomputed and chained, last {last}")
    return last if seqs else prev


def check_handover(folder: Path, key_file: Path | None, report: Report) -> None:
    """The package's own manifest and files, then every month's archive in order, chained across months."""
    check_signature(folder, key_file, report)
    manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    for f in manifest["files"]:
        path = folder / f["name"]
        if not path.is_file() or sha256_file(path) != f["sha256"]:
            report.fail(f"{path}: missing, or its SHA-256 differs from the package manifest's")
    report.ok(f"{folder}: {len(manifest['files'])} files listed in the package manifest checked")
    prev: str | None = GENESIS
    for month in manifest["months"]:
        prev = check_archive(folder / "archives" / month, key_file, report, prev)


def fetch_feed(url: str, client_id: str, secret: str) -> list[dict[str, Any]]:
    """Every sealed batch from GET /v1/feed, signed as SPEC.md says (role draw)."""
    batches: list[dict[str, Any]] = []
    while True:
        path = f"/v1/feed?after={batches[-1]['seq'] if batches else 0}&limit=100"
        stamp, nonce = str(int(time.time())), secrets.token_hex(16)
        canonical_text = "\n".join(("GET", path, stamp, nonce, hashlib.sha256(b"").hexdigest()))
        signature = hmac.new(secret.encode(), canonical_text.encode(), hashlib.sha256).hexdigest()
        headers = {"X-Client-Id": client_id, "X-Timestamp": stamp, "X-Nonce": nonce, "X-Signature": signature}
        with urllib.request.urlopen(urllib.request.Request(url.rstrip("/") + path, headers=headers)) as answer:
            page = json.load(answer)["batches"]
        if not page:
            return batches
        batches += page


def check_feed(url: str, client_id: str, secret: str, archive: Path | None, report: Report) -> None:
    """The live feed's chain from the genesis hash; with an archive, each of its batches against the feed's."""
    batches = fetch_feed(url, client_id, secret)
    served = {b["seq"]: [{"body": canonical(e), "key": e["key"]} for e in b["entries"]] for b in batches}
    last = check_chain(batches, iter(served.items()), GENESIS, url, report)
    report.ok(f"{url}: {len(batches)} batches read, last hash {last}")
    if archive is None:
        return
    live = {b["seq"]: b for b in batches}
    entries = dict(by_batch(rows(archive / "feed_entries.jsonl.gz")))  # a month's feed: an auditor's machine holds it
    for b in rows(archive / "feed_batches.jsonl.gz"):
        seq = b["seq"]
        if seq not in live or live[seq]["sha256"] != b["sha256"]:
            report.fail(f"{archive}: batch {seq}: its hash differs from the live feed's")
        for i, (mine, theirs) in enumerate(zip(entries.get(seq, []), served.get(seq, []), strict=False), 1):
            if mine["body"] != theirs["body"]:
                report.fail(f"{archive / 'feed_entries.jsonl.gz'}: batch {seq}, entry {i}: differs from the live feed")
                break
    report.ok(f"{archive}: compared with the live feed")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="audit_kit.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    for name in ("archive", "handover"):
        one = sub.add_parser(name)
        one.add_argument("dir", type=Path)
        one.add_argument("--key", type=Path, help="the published public key (PEM); else the folder's own")
    feed = sub.add_parser("feed")
    feed.add_argument("url")
    feed.add_argument("--client-id", required=True)
    feed.add_argument("--secret", required=True)
    feed.add_argument("--archive", type=Path, help="an archive whose batches to compare with the feed")
    args = parser.parse_args(argv)
    report = Report()
    try:
        if args.what == "archive":
            check_archive(args.dir, args.key, report)
        elif args.what == "handover":
            check_handover(args.dir, args.key, report)
        else:
            check_feed(args.url, args.client_id, args.secret, args.archive, report)
    except (OSError, ValueError, KeyError) as exc:  # a missing manifest, a file that is not gzip'd JSON lines...
        report.fail(f"could not go on: {type(exc).__name__}: {exc}")
    if report.problems:
        print(f"FIRST DIVERGENCE: {report.problems[0]}\nNOT OK: {len(report.problems)} problem(s)")
        return 1
    print("OK: everything checked is as signed and chained")
    return 0


if __name__ == "__main__":
    sys.exit(main())
