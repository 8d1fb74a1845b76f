"""This machine's own limits, measured in the same run as the pipeline: the ratios' denominators.

- a bare ASGI app under the gateway's server (gunicorn, uvicorn worker, same processes), requests/s, for a
  bodiless GET and for a POST of the same body as a 100-invoice upload (the app reads it);
- Redis (the stack's own, project config, AOF on) SET and SADD, pipelined 64 deep and one per round trip;
- PostgreSQL: the workers' sink (workers/sink.py: COPY into staging, the upsert with its status events and
  feed entries) in transactions of a worker's batch, rows/s.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BARE_APP = """
async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})
"""


def bare_app(
    devstack: Any,
    folder: Path,
    processes: int,
    run_wrk: Callable[[str, Path | None], dict[str, Any]],
    post_body: bytes,
) -> dict[str, Any]:
    """The bare app under gunicorn: ``run_wrk``'s results for GET, and for a POST of ``post_body``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bareapp.py").write_text(BARE_APP)
    port = devstack.free_port()
    argv = [str(devstack.VENV_BIN / "gunicorn"), "bareapp:app", "-b", f"127.0.0.1:{port}", "-w", str(processes)]
    argv += ["-k", "uvicorn_worker.UvicornWorker", "--chdir", str(folder)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        devstack.wait_until("bare app", lambda: devstack.http_ok(f"http://127.0.0.1:{port}/"))
        script = folder / "post.lua"
        script.write_text(f"wrk.method = 'POST'\nwrk.body = {_lua_string(post_body)}\n")
        return {"get": run_wrk(f"http://127.0.0.1:{port}/", None), "post": run_wrk(f"http://127.0.0.1:{port}/", script)}
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _lua_string(data: bytes) -> str:
    return "'" + "".join(f"\\{b:03d}" for b in data) + "'"


def redis_ops(port: int, rounds: int = 3) -> dict[str, Any]:
    """ops/s of SET and SADD from redis-benchmark, pipelined 64 deep and unpipelined (16 clients)."""
    out: dict[str, Any] = {}
    for label, extra in (("pipelined_64", ["-P", "64", "-n", "500000"]), ("unpipelined", ["-P", "1", "-n", "100000"])):
        rounds_seen: dict[str, list[float]] = {"SET": [], "SADD": []}
        for _ in range(rounds):
            argv = ["redis-benchmark", "-p", str(port), "-c", "16", "-t", "set,sadd", "-r", "1000000", "--csv", *extra]
            text = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
            for line in text.splitlines():
                cells = [c.strip('"') for c in line.split(",")]
                if cells[0] in rounds_seen:
                    rounds_seen[cells[0]].append(float(cells[1]))
        out[label] = {cmd: {"median": statistics.median(v), "rounds": v} for cmd, v in rounds_seen.items()}
    return out


def sink_rows(database_url: str, batch_rows: int, batches: int = 10, rounds: int = 3) -> dict[str, Any]:
    """rows/s of workers/sink.write with fresh, eligible invoices in transactions of ``batch_rows``."""
    return asyncio.run(_sink_rows(database_url, batch_rows, batches, rounds))


async def _sink_rows(database_url: str, batch_rows: int, batches: int, rounds: int) -> dict[str, Any]:
    import asyncpg

    from core.contract import Queued
    from workers import sink
    from workers.judge import Judgement

    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1, init=sink.prepare)
    now = dt.datetime.now(dt.UTC)
    at_ms = int(time.time() * 1000)
    eligible = Judgement("verified")
    counter = 0
    per_round = []
    try:
        for _ in range(rounds):
            work = []
            for _ in range(batches):
                batch = []
                for _ in range(batch_rows):
                    counter += 1
                    q = Queued(f"2634199{counter:013d}", f"2634199{counter:013d}", "", "2026-06-01", 18800,
                               "91340104000000001X", "合肥示例餐饮有限公司", "catering", "", f"p{counter:062d}",
                               f"u{counter}", f"d{counter}", "b", "bench", at_ms)  # fmt: skip
                    batch.append(sink.Judged(q, eligible, now))
                work.append(batch)
            started = time.perf_counter()
            for batch in work:
                await sink.write(pool, batch, [])
            per_round.append(batch_rows * batches / (time.perf_counter() - started))
    finally:
        await pool.close()
    return {"batch_rows": batch_rows, "median": statistics.median(per_round), "rounds": per_round}
