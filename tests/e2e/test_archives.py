"""The issue's acceptance scenario ("How we will know"), tried as an auditor would: after uploads on a dev stack
of its own, the open month is archived and the hand-over package written; with the stack stopped, the kit checks
both in another folder (no database, no setting); one byte flipped in one file and the kit names that file; one
feed entry changed (and its file re-hashed into the manifest) and the kit names the batch; every byte of every
archive and hand-over file (decompressed too) holds no name, ID number, location or secret."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import random
import shutil
import subprocess
from pathlib import Path
from typing import Any

from core import settings as config
from core.settings import from_env
from deploy import devstack
from deploy.devstack import VENV_BIN, free_port
from loadtest import sample
from loadtest.client import SignedClient
from tests.privacy import LOCATIONS, leaks
from workers.cli import run_worker

ROOT = Path(__file__).resolve().parent.parent.parent
KIT = ROOT / "gateway" / "audit_kit.py"


def id_number(n: int) -> str:
    """A valid resident ID number (ISO 7064 MOD 11-2), a different person for each ``n``."""
    body = f"11010519491231{n:03d}"
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return body + "10X98765432"[sum(int(c) * w for c, w in zip(body, weights, strict=True)) % 11]


def uploaded(base_url: str) -> list[dict[str, Any]]:
    """Two requests of valid invoices with every personal field a channel may send."""
    rng = random.Random(16)
    invoices = [sample.invoice(rng) for _ in range(40)]
    for n, inv in enumerate(invoices):
        inv["user"] |= {"id_number": id_number(n), "location": {"lat": float(LOCATIONS[0]), "lon": float(LOCATIONS[1])}}
    with SignedClient(base_url, "demo-channel", "demo-channel-secret") as channel:
        for part in (invoices[:20], invoices[20:]):
            resp = channel.upload(part)
            assert resp.status_code == 202, resp.text
            assert all(r["status"] == "accepted" for r in resp.json()["results"]), resp.text
    return invoices


def command(env: dict[str, str], *argv: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=300)


def kit(folder: Path, what: str = "archive") -> subprocess.CompletedProcess[str]:
    """The kit as an auditor runs it: a copy of the script, the system's Python (Debian's, with its older
    cryptography: make system-deps), no variable, another folder."""
    shutil.copy(KIT, folder.parent / "audit_kit.py")
    env = {"PATH": "/usr/bin:/bin"}
    return command(env, SYSTEM_PYTHON, "-I", "audit_kit.py", what, folder.name, cwd=folder.parent)


SYSTEM_PYTHON = "/usr/bin/python3"


def regzip(path: Path, lines: list[str]) -> None:
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.writelines(line + "\n" for line in lines)


def changed_feed_entry(folder: Path) -> int:
    """Change one entry's amount in the archive's feed, re-hash the file into the manifest (as an insider would);
    returns the batch of the entry."""
    path = folder / "feed_entries.jsonl.gz"
    rows = [json.loads(line) for line in gzip.decompress(path.read_bytes()).decode().splitlines()]
    victim = rows[len(rows) // 2]
    body = json.loads(victim["body"])
    body["amount_fen"] += 100
    victim["body"] = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    regzip(path, [json.dumps(r, ensure_ascii=False) for r in rows])
    manifest = json.loads((folder / "manifest.json").read_text())
    for f in manifest["files"]:
        if f["name"] == path.name:
            f["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False))
    return int(victim["batch_seq"])


def every_byte(folder: Path, tmp: Path) -> list[Path]:
    """Every file under ``folder``, and the decompressed text of each gzip'd one."""
    found = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        found.append(path)
        if path.suffix == ".gz":
            plain = tmp / f"{len(found)}-{path.stem}"
            plain.write_bytes(gzip.decompress(path.read_bytes()))
            found.append(plain)
    return found


def test_an_auditor_checks_the_archive_and_the_handover_with_the_server_stopped(tmp_path: Path) -> None:
    data = ROOT / ".data" / "test-archives"
    shutil.rmtree(data, ignore_errors=True)
    stack = devstack.Stack(
        data,
        redis_port=free_port(),
        pg_port=free_port(),
        sim_port=free_port(),
        port=free_port(),
        campaign=ROOT / "tests" / "campaigns" / "hefei-2026-sharded.toml",
    )
    made = tmp_path / "made"
    try:
        stack.reset_metrics()
        stack.start_redis()
        stack.start_postgres()
        stack.prepare_database()
        stack.start_simulator()
        stack.start_gateway(processes=1)
        invoices = uploaded(f"http://127.0.0.1:{stack.port}")
        settings = config.replace(from_env(stack.env), inflight_grace_s=0.0, verify_recheck_s="0.2,0.4")
        asyncio.run(asyncio.wait_for(run_worker(settings, burst=True, handle_signals=False), 120))
        archived = command(stack.env, str(VENV_BIN / "gateway"), "archive", "--through-today", "--out", str(made / "a"))
        assert archived.returncode == 0, archived.stderr
        handed = command(stack.env, str(VENV_BIN / "gateway"), "handover", "--out", str(made / "h"))
        assert handed.returncode == 0, handed.stderr
    finally:
        stack.stop()
    secrets = [s for _, s, _ in devstack.DEV_CLIENTS] + [stack.env["GATEWAY_PERSON_SECRET"]]
    found = leaks(every_byte(made, tmp_path), [*secrets, *(i["user"]["id"] for i in invoices)])
    assert found == [], f"personal data or secrets in an archive: {found}"

    auditor = tmp_path / "auditor"
    auditor.mkdir()
    shutil.copytree(made / "a", auditor / "a")
    done = kit(auditor / "a")
    assert done.returncode == 0, done.stdout
    assert "snapshot archive" in done.stdout and "recomputed and chained" in done.stdout
    verified = command({"PATH": "/usr/bin:/bin"}, str(VENV_BIN / "gateway"), "archive", "verify", str(auditor / "a"))
    assert verified.returncode == 0, verified.stdout + verified.stderr

    flipped = auditor / "a" / "invoices.jsonl.gz"
    data = bytearray(flipped.read_bytes())
    data[len(data) // 2] ^= 0x01
    flipped.write_bytes(bytes(data))
    done = kit(auditor / "a")
    assert done.returncode == 1
    assert "FIRST DIVERGENCE: a/invoices.jsonl.gz: its SHA-256 differs" in done.stdout, done.stdout

    shutil.copytree(made / "a", auditor / "b")
    seq = changed_feed_entry(auditor / "b")
    done = kit(auditor / "b")
    assert done.returncode == 1
    assert f"b/feed_entries.jsonl.gz: batch {seq}: its entries do not hash to its sha256" in done.stdout, done.stdout
    assert "b/manifest.json: its signature does not verify" in done.stdout, done.stdout

    shutil.copytree(made / "h", auditor / "h")
    done = kit(auditor / "h", "handover")
    assert done.returncode == 0, done.stdout
    assert (auditor / "h" / "README.md").read_text().startswith("# 有奖发票平台数据移交包")
