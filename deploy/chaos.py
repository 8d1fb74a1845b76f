"""The chaos drill: a dev stack of its own under continuous uploads of two channels, while a schedule of faults
runs, several at once; then the proof that nothing accepted was lost or doubled.

    python -m deploy.chaos [--duration 600] [--data .data/chaos] [--seed N]      (make chaos; make test: 60 s)

The faults, as the issue lists them: SIGKILL of the gateway's processes (one gunicorn worker; the whole gateway)
and of a stream worker; Redis frozen (SIGSTOP, SIGCONT) and killed (SIGKILL, then started again from its AOF);
PostgreSQL frozen and killed (SIGKILL of every backend, then crash recovery at its start); the tax service down
(frozen) and then slow (a p99 of seconds); the national platform down; PostgreSQL unreachable. The stack
supervises its processes (``Stack.supervise``, as ``make run`` does): whatever exits is started again and said so.

At the end, once the uploads stop and the pipeline has drained: every invoice answered ``accepted`` is in
PostgreSQL once, in a final status, with one ``accepted`` event; each eligible key is fed in exactly one ``add``;
the chain recomputes; no answer but 202, 400, 401, 403, 404, 409, 413, 429 and 503 (and connections refused
while the gateway restarts); and ``gateway reconcile`` of the day finds nothing unexplained. It prints the faults
done and the worst recovery time per fault: from the fault's end to the first acceptance of a request sent after.

What it proves of Redis: its SIGKILL is a process's death, not its host's; the OS keeps what the AOF wrote, so
nothing acknowledged may be lost. A host crash can lose up to a second (appendfsync everysec: deploy/README.md).
PostgreSQL made unreachable for 30 s is not drilled here: no firewall tool runs on this machine; a frozen
PostgreSQL (connections open, nothing answers) is the closest, and is drilled.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from core.feed import GENESIS, batch_sha256
from deploy.devstack import ROOT, VENV_BIN, Stack, StackError, free_port, remove_data
from loadtest import sample
from loadtest.client import SignedClient

ALLOWED = {202, 400, 401, 403, 404, 409, 413, 429, 503}
FINAL = ("eligible", "ineligible", "reversed")
FAST = {
    "GATEWAY_VERIFY_RECHECK_S": "0.5,1",
    "GATEWAY_WORKER_CLAIM_IDLE_MS": "2000",
    "GATEWAY_RECHECK_LEASE_S": "2",
    "GATEWAY_SEAL_INTERVAL_MS": "200",
    "GATEWAY_VERIFY_TIMEOUT_MS": "2000",
}
SLOW_TAX = {"GATEWAY_SIMULATOR_MEDIAN_MS": "400", "GATEWAY_SIMULATOR_P99_MS": "3000"}
CHANNELS = ("demo-channel", "demo-channel-2")


class Cuttable:
    """A TCP relay in front of PostgreSQL that the drill can cut: while cut it passes no byte either way and opens
    no new connection onward (a firewall dropping packets: the clients' sockets stay open and hear nothing), then
    it resumes and what was held goes through."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.open = threading.Event()
        self.open.set()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._connect, args=(client,), daemon=True).start()

    def _connect(self, client: socket.socket) -> None:
        self.open.wait()
        try:
            server = socket.create_connection(("127.0.0.1", self.target_port))
        except OSError:
            client.close()
            return
        for a, b in ((client, server), (server, client)):
            threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                self.open.wait()
                dst.sendall(data)
        for sock in (src, dst):  # the other direction's pump then stops too
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread
        self.listener.close()

    def cut(self, hold_s: float, stop: threading.Event) -> None:
        self.open.clear()
        stop.wait(hold_s)
        self.open.set()


@dataclass
class Sent:
    started: float
    ended: float
    status: int  # 0: no HTTP answer (connection refused or timed out)


@dataclass
class Drill:
    stack: Stack
    hold_s: float
    relay: Cuttable
    unreachable_s: float
    stop: threading.Event = field(default_factory=threading.Event)
    sent: list[Sent] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)
    faults: list[tuple[str, float, float]] = field(default_factory=list)  # name, start, end (monotonic)
    said: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def pid(self, name: str) -> int:
        return next(p.pid for n, p in reversed(self.stack.procs) if n == name and p.poll() is None)

    def signal_group(self, name: str, sig: signal.Signals) -> None:
        with contextlib.suppress(StopIteration, ProcessLookupError):  # already gone: being restarted
            os.killpg(self.pid(name), sig)  # each process of the stack leads its own group (start_new_session)

    def freeze(self, name: str) -> None:
        self.signal_group(name, signal.SIGSTOP)
        self.stop.wait(self.hold_s)
        self.signal_group(name, signal.SIGCONT)

    def kill_gunicorn_worker(self) -> None:
        children = Path(f"/proc/{self.pid('gateway')}/task/{self.pid('gateway')}/children").read_text().split()
        if children:
            os.kill(int(random.choice(children)), signal.SIGKILL)

    def slow_tax_service(self) -> None:
        argv, env, credentials = self.stack.specs["simulator"]
        self.stack.specs["simulator"] = (argv, {**(env or {}), **SLOW_TAX}, credentials)
        self.signal_group("simulator", signal.SIGKILL)  # started again slow
        self.stop.wait(self.hold_s)
        self.stack.specs["simulator"] = (argv, env, credentials)
        self.signal_group("simulator", signal.SIGKILL)

    def faults_of(self) -> dict[str, Callable[[], None]]:
        kill = signal.SIGKILL
        return {
            "gunicorn worker SIGKILL": self.kill_gunicorn_worker,
            "gateway SIGKILL (all its processes)": lambda: self.signal_group("gateway", kill),
            "stream worker SIGKILL": lambda: self.signal_group("worker-0", kill),
            "Redis frozen": lambda: self.freeze("redis"),
            "Redis SIGKILL, restart from AOF": lambda: self.signal_group("redis", kill),
            "PostgreSQL frozen": lambda: self.freeze("postgres"),
            "PostgreSQL SIGKILL, crash recovery": lambda: self.signal_group("postgres", kill),
            "tax service down": lambda: self.freeze("simulator"),
            "tax service slow (p99 3 s)": self.slow_tax_service,
            "national platform down": lambda: self.freeze("national-simulator"),
            "PostgreSQL unreachable": lambda: self.relay.cut(self.unreachable_s, self.stop),
        }


# Rounds of faults, several at once; a round every SPACING of the run (make chaos repeats the rounds).
ROUNDS = (
    ("gunicorn worker SIGKILL", "stream worker SIGKILL", "tax service down"),
    ("Redis frozen", "PostgreSQL frozen", "national platform down"),
    ("Redis SIGKILL, restart from AOF", "tax service slow (p99 3 s)"),
    ("PostgreSQL SIGKILL, crash recovery", "stream worker SIGKILL"),
    ("gateway SIGKILL (all its processes)", "Redis frozen"),
    ("PostgreSQL unreachable", "gunicorn worker SIGKILL"),
)


def upload_forever(drill: Drill, base_url: str, channel: str, seed: int) -> None:
    rng = random.Random(seed)
    with SignedClient(base_url, channel, f"{channel}-secret", timeout_s=15) as client:
        while not drill.stop.is_set():
            started = time.monotonic()
            try:
                answer = client.upload([sample.invoice(rng) for _ in range(10)])
                status = answer.status_code
                keys = (
                    [r["key"] for r in answer.json()["results"] if r["status"] == "accepted"] if status == 202 else []
                )
            except (httpx.TransportError, ValueError):
                status, keys = 0, []
                drill.stop.wait(0.2)
            with drill.lock:
                drill.sent.append(Sent(started, time.monotonic(), status))
                drill.accepted.extend(keys)


def supervise(drill: Drill) -> None:
    while not drill.stop.is_set():
        for line in drill.stack.supervise():
            drill.said.append(line)
            print(f"  supervisor: {line}", flush=True)
        time.sleep(0.2)


def run_faults(drill: Drill, duration_s: float, rng: random.Random) -> None:
    faults = drill.faults_of()
    rounds = [ROUNDS[i % len(ROUNDS)] for i in range(max(len(ROUNDS), int(duration_s // 15)))]
    spacing = duration_s / (len(rounds) + 1)
    begin = time.monotonic()
    for i, names in enumerate(rounds, start=1):
        if drill.stop.wait(max(0.0, begin + i * spacing + rng.uniform(-1, 1) - time.monotonic())):
            return
        threads = [threading.Thread(target=_one_fault, args=(drill, n, faults[n])) for n in names]
        for t in threads:
            t.start()
        for t in threads:
            t.join()


def _one_fault(drill: Drill, name: str, fault: Callable[[], None]) -> None:
    start = time.monotonic()
    print(f"  fault: {name}", flush=True)
    fault()
    with drill.lock:
        drill.faults.append((name, start, time.monotonic()))


def recovery(drill: Drill) -> dict[str, float | None]:
    """Per fault, the worst time from its end to the first 202 of a request sent after it ended."""
    worst: dict[str, float | None] = {}
    for name, _, end in drill.faults:
        after = [s.ended - end for s in drill.sent if s.status == 202 and s.started >= end]
        took = min(after) if after else None
        best = worst.get(name, 0.0)
        worst[name] = None if took is None or (name in worst and best is None) else max(best or 0.0, took)
    return worst


def check(stack: Stack, drill: Drill) -> list[str]:
    """What is wrong at the end, an empty list when nothing."""
    problems = []
    seen = Counter(s.status for s in drill.sent)
    if set(seen) - ALLOWED - {0}:
        problems.append(f"answers outside {sorted(ALLOWED)}: {dict(seen)}")
    rows = asyncio.run(_final_rows(stack, drill.accepted))
    statuses = Counter(r["status"] for r in rows["invoices"])
    if len(rows["invoices"]) != len(set(drill.accepted)) or set(statuses) - set(FINAL):
        problems.append(f"accepted {len(set(drill.accepted))}, committed {dict(statuses)}")
    if rows["accepted_events"] != len(set(drill.accepted)):
        problems.append(f"{rows['accepted_events']} 'accepted' events for {len(set(drill.accepted))} keys")
    eligible = {r["key"] for r in rows["invoices"] if r["status"] == "eligible"}
    adds = rows["adds"]
    if len(adds) != len(set(adds)) or set(adds) != eligible:
        problems.append(f"fed {len(adds)} adds ({len(set(adds))} keys) for {len(eligible)} eligible keys")
    problems.extend(_chain_problems(rows["batches"], rows["sealed"]))
    done = subprocess.run(
        [str(VENV_BIN / "gateway"), "reconcile"], env=stack.env, capture_output=True, text=True, timeout=300
    )
    print(done.stdout.strip().splitlines()[0] if done.stdout.strip() else done.stderr.strip(), flush=True)
    if done.returncode != 0:
        problems.append(f"gateway reconcile: exit status {done.returncode}: {done.stdout[-1500:]}{done.stderr[-500:]}")
    return problems


async def _final_rows(stack: Stack, accepted: list[str]) -> dict[str, Any]:
    conn = await asyncpg.connect(stack.env["GATEWAY_DATABASE_URL"])
    try:
        keys = sorted(set(accepted))
        return {
            "invoices": await conn.fetch("SELECT key, status FROM invoices WHERE key = ANY($1)", keys),
            "accepted_events": await conn.fetchval(
                "SELECT count(*) FROM invoice_events WHERE key = ANY($1) AND status = 'accepted'", keys
            ),
            "adds": [
                r["key"]
                for r in await conn.fetch("SELECT key FROM feed_entries WHERE kind = 'add' AND key = ANY($1)", keys)
            ],
            "batches": await conn.fetch("SELECT seq, prev_sha256, sha256 FROM feed_batches ORDER BY seq"),
            "sealed": await conn.fetch(
                "SELECT batch_seq, body FROM feed_entries WHERE batch_seq IS NOT NULL ORDER BY batch_seq, id"
            ),
        }
    finally:
        await conn.close()


def _chain_problems(batches: list[Any], sealed: list[Any]) -> list[str]:
    """Each batch's hash recomputed from its predecessor's and its entries as stored (SPEC.md)."""
    bodies: dict[int, list[str]] = {}
    for e in sealed:
        bodies.setdefault(e["batch_seq"], []).append(e["body"])
    prev = GENESIS
    for expected, b in enumerate(batches, start=1):
        if (
            b["seq"] != expected
            or b["prev_sha256"] != prev
            or batch_sha256(prev, bodies.get(b["seq"], [])) != b["sha256"]
        ):
            return [f"the chain breaks at batch {b['seq']}"]
        prev = b["sha256"]
    return []


def drained(stack: Stack, accepted: list[str]) -> bool:
    async def count() -> int:
        conn = await asyncpg.connect(stack.env["GATEWAY_DATABASE_URL"])
        try:
            return int(
                await conn.fetchval(
                    "SELECT count(*) FROM invoices WHERE key = ANY($1) AND status = ANY($2)",
                    sorted(set(accepted)),
                    list(FINAL),
                )
            )
        finally:
            await conn.close()

    try:
        return asyncio.run(count()) == len(set(accepted))
    except (OSError, asyncpg.PostgresError):
        return False


def run(duration_s: float, data: Path, seed: int) -> int:
    """The drill; 0 when everything holds, 1 when not."""
    remove_data(data)
    port = free_port
    pg_port = port()
    relay = Cuttable(pg_port)  # every process of the stack reaches PostgreSQL through it
    url = {"GATEWAY_DATABASE_URL": f"postgresql://gateway@127.0.0.1:{relay.port}/gateway"}
    stack = Stack(data, redis_port=port(), pg_port=pg_port, sim_port=port(), port=port(), extra_env=FAST | url)
    rng = random.Random(seed)
    hold_s = min(8.0, max(3.0, duration_s / 20))
    drill = Drill(stack, hold_s, relay, unreachable_s=min(30.0, duration_s / 4))
    try:
        stack.start_all(gateway_processes=2, worker_processes=2)
        print(f"chaos: {duration_s:.0f} s of uploads and faults, seed {seed}, logs in {stack.logs}", flush=True)
        base_url = f"http://127.0.0.1:{stack.port}"
        threads = [threading.Thread(target=supervise, args=(drill,))]
        threads += [
            threading.Thread(target=upload_forever, args=(drill, base_url, c, rng.randrange(10**9))) for c in CHANNELS
        ]
        for t in threads:
            t.start()
        run_faults(drill, duration_s, rng)
        drill.stop.wait(max(0.0, duration_s / (len(ROUNDS) + 1)))
        drill.stop.set()
        for t in threads:
            t.join()
        return _finish(stack, drill)
    finally:
        drill.stop.set()
        stack.stop()
        relay.close()


def _finish(stack: Stack, drill: Drill) -> int:
    deadline = time.monotonic() + 300
    while not drained(stack, drill.accepted) and time.monotonic() < deadline:
        for line in stack.supervise():
            print(f"  supervisor: {line}", flush=True)
        time.sleep(1)
    seen = Counter(s.status for s in drill.sent)
    print(
        f"requests: {sum(seen.values())}, answers {dict(sorted(seen.items()))} (0: no answer); "
        f"invoices accepted: {len(set(drill.accepted))}; restarts by the supervisor: {len(drill.said)}"
    )
    print("fault                                  done  worst recovery (s)")
    done = Counter(name for name, _, _ in drill.faults)
    for name, worst in sorted(recovery(drill).items()):
        print(f"{name:38} {done[name]:>4}  {'none after it' if worst is None else f'{worst:.1f}'}")
    problems = check(stack, drill)
    for p in problems:
        print(f"FAILED: {p}", flush=True)
    print("chaos: OK" if not problems else "chaos: FAILED", flush=True)
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of uploads and faults")
    parser.add_argument("--data", type=Path, default=ROOT / ".data" / "chaos")
    parser.add_argument("--seed", type=int, default=int(time.time()))
    args = parser.parse_args(argv)
    try:
        return run(args.duration, args.data, args.seed)
    except StackError as exc:
        print(exc, file=sys.stderr)
        return exc.status


if __name__ == "__main__":
    sys.exit(main())
