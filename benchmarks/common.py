"""What the benchmarks share: a stack of their own (the launcher's ``Stack``), and saving their results."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def commit(revision: str = "HEAD") -> str:
    """The short commit id of ``revision`` in this tree ("" when git cannot say)."""
    found = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", revision], capture_output=True, text=True)
    return found.stdout.strip()


RESULTS = ROOT / "benchmarks" / "results"


@contextlib.contextmanager
def bench_stack(
    full: bool,
    campaign: Path | None = None,
    extra_env: dict[str, str] | None = None,
    workers: int = 1,
    name: str = "bench",
    pg_stats: bool = False,
) -> Iterator[Any]:
    """Redis and PostgreSQL under .data/NAME on free ports; with ``full``, also the simulator, the gateway
    (2 processes) and ``workers`` workers. Stopped and removed afterwards. ``pg_stats``: PostgreSQL loads
    pg_stat_statements (``statements`` reads it)."""
    from deploy import devstack

    data = ROOT / ".data" / name
    devstack.remove_data(data)
    port = devstack.free_port
    settings = {**pg_settings_asked(), **(PG_STATS if pg_stats else {})}
    options: dict[str, Any] = {"extra_env": extra_env, "pg_settings": settings or None}
    if campaign is not None:
        options["campaign"] = campaign
    stack = devstack.Stack(data, redis_port=port(), pg_port=port(), sim_port=port(), port=port(), **options)
    try:
        if full:
            stack.start_all(gateway_processes=2, worker_processes=workers)
        else:
            stack.start_stores()
        yield stack
    finally:
        stack.stop()
        devstack.remove_data(data)


PG_STATS = {"shared_preload_libraries": "pg_stat_statements", "pg_stat_statements.max": "1000"}


def pg_settings_asked() -> dict[str, str]:
    """More PostgreSQL settings for every stack of a run, from ``BENCH_PG_SETTINGS`` (``name=value`` separated by
    spaces; e.g. ``"max_wal_size=8GB wal_compression=lz4"``, to measure the settings deploy/postgres/README.md
    gives for production)."""
    return dict(item.split("=", 1) for item in os.environ.get("BENCH_PG_SETTINGS", "").split())


async def statements_reset(dsn: str) -> None:
    """Start counting PostgreSQL's statements afresh (a stack of ``bench_stack(pg_stats=True)``)."""
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        await conn.execute("SELECT pg_stat_statements_reset()")
        await conn.execute("SELECT pg_stat_reset()")  # the tables' counters (``statements``' "tables")
        await conn.execute("SELECT pg_stat_reset_shared('wal')")  # the server's WAL, full-page images included
    finally:
        await conn.close()


async def statements(dsn: str, per: int, top: int = 8) -> dict[str, Any]:
    """PostgreSQL's execution time since ``statements_reset``, in µs per ``per`` (e.g. invoices): the whole, and
    the ``top`` statements (their text's start, calls, µs), the dearest first; the WAL written, in bytes per
    ``per`` (by the statements, and by the whole server with its full-page images: the first change of a page
    after a checkpoint writes the whole page); and the rows each table (its partitions summed) inserted and updated
    per ``per``, and how many of the updates were HOT (no index touched), the most written first."""
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT query, calls, total_exec_time, wal_bytes FROM pg_stat_statements"
            " WHERE query NOT LIKE '%pg_stat_statements%' ORDER BY total_exec_time DESC"
        )
        tables = await conn.fetch(
            "SELECT coalesce(i.inhparent::regclass::text, t.relname) AS name, sum(t.n_tup_ins) AS ins,"
            " sum(t.n_tup_upd) AS upd, sum(t.n_tup_hot_upd) AS hot FROM pg_stat_user_tables t"
            " LEFT JOIN pg_inherits i ON i.inhrelid = t.relid GROUP BY 1"
            " HAVING sum(t.n_tup_ins) + sum(t.n_tup_upd) > 0 ORDER BY sum(t.n_tup_ins) + sum(t.n_tup_upd) DESC"
        )
        wal = await conn.fetchrow("SELECT wal_bytes, wal_fpi FROM pg_stat_wal")
        assert wal is not None  # one row, always
        checkpoints = await conn.fetchval("SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter")
    finally:
        await conn.close()
    return {
        "us_per": sum(r["total_exec_time"] for r in rows) * 1000 / per,
        "wal_bytes_per": sum(int(r["wal_bytes"]) for r in rows) / per,
        "server_wal_bytes_per": int(wal["wal_bytes"]) / per,
        "full_page_images_per": int(wal["wal_fpi"]) / per,
        "checkpoints": checkpoints,
        "tables": [
            {"table": t["name"], **{f"{k}_per": int(t[k]) / per for k in ("ins", "upd", "hot")}} for t in tables
        ],
        "top": [
            {
                "statement": " ".join(" ".join(line.split("--")[0] for line in r["query"].splitlines()).split())[:90],
                "calls": r["calls"],
                "us_per": r["total_exec_time"] * 1000 / per,
            }
            for r in rows[:top]
        ],
    }


def metric(url: str, name: str) -> float:
    """One unlabelled sample from the gateway's ``/metrics`` (0 when absent), summed over its processes."""
    import urllib.request

    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as resp:
        for line in resp.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return 0.0


def save(name: str, title: str, result: dict[str, Any], markdown: Callable[[dict[str, Any]], str]) -> None:
    """benchmarks/results/NAME.json and NAME.md, and the table on stdout."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    result["measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    if asked := pg_settings_asked():  # BENCH_PG_SETTINGS: said in the title, and kept
        result["pg_settings"] = asked
        title += ", PostgreSQL with " + " ".join(f"{k}={v}" for k, v in asked.items())
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    table = markdown(result)
    (RESULTS / f"{name}.md").write_text(f"# {title} ({result['measured_at']})\n\n{table}")
    print(table)


@contextlib.contextmanager
def worktree(revision: str) -> Iterator[Path]:
    """A temporary git worktree of ``revision`` (this environment's packages serve it), removed afterwards."""
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "tree"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), revision], check=True)
        try:
            yield tree
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=True)


@contextlib.contextmanager
def simulator(tree: Path = ROOT, median_ms: float = 0.0, p99_ms: float = 0.0) -> Iterator[tuple[str, int]]:
    """The verification simulator of ``tree`` (this one, or a worktree's) as a process of its own on a free port,
    once it answers: its URL and process id."""
    from deploy.devstack import free_port

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    latency = {"GATEWAY_SIMULATOR_MEDIAN_MS": str(median_ms), "GATEWAY_SIMULATOR_P99_MS": str(p99_ms)}
    env = {**os.environ, "PYTHONPATH": str(tree), **latency}
    argv = [sys.executable, "-m", "workers.cli", "simulator", "--port", str(port)]
    proc = subprocess.Popen(argv, cwd=tree, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"{url}/healthz", timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        yield url, proc.pid
    finally:
        proc.terminate()
        proc.wait(10)
