"""The dev stack: Redis, PostgreSQL, the verification simulator, the national platform's simulator, the
gateway (gunicorn), the workers and the export process (the outbox relay, the closing of days), on loopback,
with their data under one folder of the project. Runs in the foreground; SIGINT or SIGTERM stops every process
it started.

    python deploy/devstack.py [--data .data] [--port 8080] [--redis-port 6390] [--pg-port 5440] ...
    python deploy/devstack.py --redis cluster   # a Redis Cluster of 3 primaries and 3 replicas instead

With ``--redis cluster`` (``make run REDIS=cluster``) Redis is a local cluster on six ports from
``--redis-port`` on (deploy/rediscluster.py), the gateway waits for one replica's acknowledgement of each
upload, and the campaign is deploy/campaigns/hefei-2026-cluster.toml (its intake spread over the primaries).

``GATEWAY_*`` variables of the caller's environment win over the stack's own (a simulator whose URL the
caller names is not started: ``GATEWAY_VERIFY_URL``, ``GATEWAY_EXPORT_URL``). While it runs, the stack's
settings are in ``<data>/stack.env``, which every command of the project run from the project folder reads
when it has no ``GATEWAY_*`` variable (core/settings.py): ``gateway reconcile`` just works beside it.

The tests import ``Stack`` to start the same parts on free ports.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from deploy import rediscluster

ROOT = Path(__file__).resolve().parent.parent
PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
VENV_BIN = Path(sys.executable).parent
CAMPAIGN = ROOT / "deploy" / "campaigns" / "hefei-2026.toml"
RESTART_WINDOW_S, RESTART_MAX_DELAY_S = 60.0, 30.0  # supervise(): the restart delay doubles per exit in a window
CLUSTER_CAMPAIGN = ROOT / "deploy" / "campaigns" / "hefei-2026-cluster.toml"
CLUSTER_NODES = 6  # 3 primaries, each with a replica
DEV_CLIENTS = (
    ("demo-channel", "demo-channel-secret", "channel"),
    ("demo-channel-2", "demo-channel-2-secret", "channel"),
    ("demo-draw", "demo-draw-secret", "draw"),
    ("demo-admin", "demo-admin-secret", "admin"),
    ("demo-auditor", "demo-auditor-secret", "auditor"),
)
# Where the cluster goes when the server cannot use <data>/postgres (Stack.postgres_folder; make clean knows it).
CLUSTER_PREFIX = "prize-gateway-pg-"
MAX_SOCKET_PATH = 107  # bytes of a unix socket's path (sun_path holds 108 with its terminating zero)
EXIT_CONFIG = 2  # what every command of the project exits with on a configuration error (core/cli.py)


class StackError(Exception):
    """A part of the stack could not start. The message is what to print: the part's own ``error:`` line(s)
    for a configuration error (``status`` 2), else what failed and where its log is."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


def _postgres_user() -> pwd.struct_passwd:
    return pwd.getpwnam("postgres")


def _groups(user: pwd.struct_passwd) -> list[int]:
    return os.getgrouplist(user.pw_name, user.pw_gid)


def _chown_tree(top: Path, uid: int, gid: int) -> None:
    os.chown(top, uid, gid)
    for folder, dirs, files in os.walk(top):
        for name in dirs + files:
            os.chown(os.path.join(folder, name), uid, gid, follow_symlinks=False)


def _failure(name: str, status: int, output: str, log: Path) -> StackError:
    """What a part's failure is worth printing: its ``error:`` lines when it refused its configuration (exit
    status 2, core/cli.py), else the part, its status and the last lines of its output, with its log."""
    lines = [line for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    if status == EXIT_CONFIG and errors:
        return StackError("\n".join(errors), EXIT_CONFIG)
    tail = "".join(f"\n  {line}" for line in lines[-10:])
    return StackError(f"error: {name} exited with {status} (its log: {log}){tail}")


def remove_data(data: Path) -> None:
    """Remove a stack's data folder (stopped), with the cluster folder of its own that its ``postgres`` link names,
    if it has one (Stack.postgres_folder): what ``make clean`` does, for one folder."""
    link = data / "postgres"
    if link.is_symlink() and (cluster := link.parent / os.readlink(link)).name.startswith(CLUSTER_PREFIX):
        shutil.rmtree(cluster, ignore_errors=True)
    shutil.rmtree(data, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(what: str, ready: Callable[[], bool], timeout_s: float = 60.0) -> None:
    """Poll ``ready`` until it is true; never a fixed sleep."""
    deadline = time.monotonic() + timeout_s
    while not ready():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not ready after {timeout_s:.0f} s")
        time.sleep(0.05)


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def redis_pong(port: int) -> bool:
    """Redis answers PING with PONG: it listens and has finished loading its data."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


class Stack:
    """The processes of one dev stack; ``stop`` ends them all, in reverse order."""

    def __init__(
        self,
        data: Path,
        *,
        redis_port: int,
        pg_port: int,
        sim_port: int,
        port: int,
        campaign: Path = CAMPAIGN,
        extra_env: dict[str, str] | None = None,
        national_port: int | None = None,
        callers_env: bool = False,
        cluster_ports: list[int] | None = None,
        database: str = "gateway",
        pg_settings: dict[str, str] | None = None,
    ) -> None:
        self.data = data.resolve()
        self.pg_settings = pg_settings or {}  # more PostgreSQL settings (-c), e.g. the benchmarks' --pg-stats
        # A Redis Cluster on these ports (half primaries, half replicas) instead of one Redis on ``redis_port``.
        self.cluster_ports = cluster_ports or []
        self.database = database
        self.campaign = campaign
        self.extra_env = extra_env or {}
        self.redis_port, self.pg_port, self.sim_port, self.port = redis_port, pg_port, sim_port, port
        self.national_port = national_port or free_port()
        # make run: the caller's GATEWAY_* variables win over the stack's own (the tests' stacks ignore them).
        self.callers = {k: v for k, v in os.environ.items() if k.startswith("GATEWAY_")} if callers_env else {}
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.logs = self.data / "logs"
        # What each process was started with, to start it again (supervise), and when it was.
        self.specs: dict[str, tuple[list[str], dict[str, str] | None, dict[str, Any]]] = {}
        self.restarts: dict[str, list[float]] = {}
        self.due: dict[str, float] = {}  # when an exited process starts again

    @property
    def env(self) -> dict[str, str]:
        """The environment of the stack's own processes (and of a test that talks to them)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
        env.update(
            GATEWAY_REDIS_URL=f"redis://127.0.0.1:{(self.cluster_ports or [self.redis_port])[0]}/0",
            GATEWAY_DATABASE_URL=f"postgresql://gateway@127.0.0.1:{self.pg_port}/{self.database}",
            GATEWAY_VERIFY_URL=f"http://127.0.0.1:{self.sim_port}",
            GATEWAY_CAMPAIGN_FILE=str(self.campaign),
            # The dev stack's own keys; anywhere else these must be real secrets.
            GATEWAY_RECEIPT_SIGNING_KEY_FILE=str(self.receipt_key_file),
            GATEWAY_RECEIPT_SECRET="dev-stack-receipt-secret",  # verifies receipts of the first (HMAC) format
            GATEWAY_PERSON_SECRET="dev-stack-person-secret",
            PROMETHEUS_MULTIPROC_DIR=str(self.data / "metrics"),
            # No load balancer in front of the dev stack: a short drain keeps Ctrl-C quick.
            GATEWAY_DRAIN_DELAY_S="1",
            GATEWAY_EXPORT_URL=f"http://127.0.0.1:{self.national_port}",
            GATEWAY_EXPORT_SECRET="dev-stack-export-secret",
            GATEWAY_REPORTS_DIR=str(self.data / "reports"),
            GATEWAY_ARCHIVE_DIR=str(self.data / "archives"),
            GATEWAY_ARCHIVE_SIGNING_KEY_FILE=str(self.archive_key_file),
            GATEWAY_CONSOLE_SECRET="dev-stack-console-secret",
            # The reference draw service (draw/): the stack's draw client, its own key, its draws' folder.
            GATEWAY_DRAW_URL=f"http://127.0.0.1:{self.port}",
            GATEWAY_DRAW_CLIENT_ID="demo-draw",
            GATEWAY_DRAW_SECRET="demo-draw-secret",
            GATEWAY_DRAW_KEY_FILE=str(self.draw_key_file),
            GATEWAY_DRAW_DIR=str(self.data / "draws"),
        )
        if self.cluster_ports:
            env["GATEWAY_REDIS_CLUSTER"] = "1"
        env.update(self.callers)
        env.update(self.extra_env)
        return env

    def runs(self, simulator_url: str) -> bool:
        """Whether the stack runs the simulator behind this setting (not when the caller points it elsewhere)."""
        return simulator_url not in self.callers

    @property
    def receipt_key_file(self) -> Path:
        """The dev stack's receipt signing key, made at its first start and kept with its data."""
        return self.data / "receipt-signing-key.pem"

    @property
    def archive_key_file(self) -> Path:
        """The dev stack's archive signing key (docs/archives.md), made at its first start and kept with its data."""
        return self.data / "archive-signing-key.pem"

    @property
    def draw_key_file(self) -> Path:
        """The draw service's signing key (draw/service.py), made at its first start and kept with its data."""
        return self.data / "draw-signing-key.pem"

    def ensure_keys(self) -> None:
        """The stack's own keys, each made once: the receipts', the archives' and the draw service's."""
        from draw.service import new_key
        from gateway.receipts import new_key_pem

        for path in (self.receipt_key_file, self.archive_key_file):
            if not path.exists():
                self.data.mkdir(parents=True, exist_ok=True)
                path.write_bytes(new_key_pem())
                path.chmod(0o600)
        if not self.draw_key_file.exists():
            new_key(self.draw_key_file)

    def _spawn(
        self, name: str, argv: list[str], env: dict[str, str] | None = None, **credentials: Any
    ) -> subprocess.Popen[bytes]:
        self.logs.mkdir(parents=True, exist_ok=True)
        with open(self.logs / f"{name}.log", "ab") as log:  # the child keeps its own copy of the descriptor
            proc = subprocess.Popen(
                argv,
                env={**self.env, **(env or {})},
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                start_new_session=True,
                **credentials,
            )
        self.procs.append((name, proc))
        self.specs[name] = (argv, env, credentials)
        return proc

    def supervise(self) -> list[str]:
        """Start again each process that exited, saying so, as Kubernetes would: after a delay that doubles with
        each exit in the last minute (0.5 s to 30 s), so that a worker that cannot reach PostgreSQL while it
        restarts waits for it rather than spinning. Call it often; it never blocks."""
        said: list[str] = []
        now = time.monotonic()
        for name, proc in [(n, p) for n, p in self.procs if p.poll() is not None]:
            recent = [t for t in self.restarts.get(name, []) if now - t < RESTART_WINDOW_S]
            due = self.due.setdefault(name, now + min(RESTART_MAX_DELAY_S, 0.5 * 2 ** len(recent)))
            if now < due:
                continue
            del self.due[name]
            self.restarts[name] = [*recent, now]
            self.procs.remove((name, proc))
            argv, env, credentials = self.specs[name]
            self._spawn(name, argv, env, **credentials)
            said.append(f"{name} exited with {proc.returncode}; restarted (see {self.logs / (name + '.log')})")
        return said

    def _alive(self, name: str, proc: subprocess.Popen[bytes], check: Callable[[], bool]) -> Callable[[], bool]:
        def ready() -> bool:
            if proc.poll() is not None:
                log = self.logs / f"{name}.log"
                raise _failure(name, proc.returncode, log.read_text(errors="replace")[-2000:], log)
            return check()

        return ready

    def start_redis(self) -> None:
        if self.cluster_ports:
            self._start_redis_cluster()
            return
        folder = self.data / "redis"
        folder.mkdir(parents=True, exist_ok=True)
        argv = [
            shutil.which("redis-server") or "redis-server",
            str(ROOT / "deploy" / "redis" / "redis.conf"),
            "--port",
            str(self.redis_port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(folder),
        ]
        proc = self._spawn("redis", argv)
        wait_until("redis", self._alive("redis", proc, lambda: redis_pong(self.redis_port)))

    def _start_redis_cluster(self) -> None:
        """Every node of the cluster, joined into one the first time, once it serves every slot with a replica
        behind each primary."""
        folder = self.data / "redis-cluster"
        formed = {rediscluster.formed(folder, port) for port in self.cluster_ports}
        if len(formed) > 1:
            raise StackError(f"error: {folder}: some nodes were in a cluster, some not; remove the folder")
        for port in self.cluster_ports:
            self.start_redis_node(port)
        if formed == {False}:
            rediscluster.create(self.cluster_ports)
        wait_until("redis cluster", lambda: rediscluster.healthy(self.cluster_ports), 60)

    def start_redis_node(self, port: int) -> subprocess.Popen[bytes]:
        """One node of the cluster (again, after a test stopped it), once it answers."""
        folder = self.data / "redis-cluster" / str(port)
        folder.mkdir(parents=True, exist_ok=True)
        name = f"redis-{port}"
        proc = self._spawn(name, rediscluster.node_argv(port, folder))
        wait_until(name, self._alive(name, proc, lambda: redis_pong(port)))
        return proc

    def start_postgres(self, replica_of: int | None = None) -> None:
        """The stack's PostgreSQL server, with its database; ``replica_of``: instead, a streaming replica of the
        server on that port (a copy by pg_basebackup, then hot standby: read-only, GATEWAY_DATABASE_READ_URL)."""
        folder = self.postgres_folder()
        user = _postgres_user() if os.geteuid() == 0 else None
        as_postgres: dict[str, Any] = {}
        if user is not None:
            as_postgres = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": _groups(user)}
        if not (folder / "PG_VERSION").exists():
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            if user is not None:
                os.chown(folder, user.pw_uid, user.pw_gid)
        if not (folder / "PG_VERSION").exists() and replica_of is not None:
            self._base_backup(folder, replica_of, as_postgres)
        elif not (folder / "PG_VERSION").exists():
            self._run(
                "initdb",
                [
                    str(PG_BIN / "initdb"),
                    "-D",
                    str(folder),
                    "-U",
                    "gateway",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8",
                ],
                cwd="/",
                **as_postgres,
            )
        argv = [
            str(PG_BIN / "postgres"),
            "-D",
            str(folder),
            "-p",
            str(self.pg_port),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            f"unix_socket_directories={folder}",
            "-c",
            "shared_buffers=256MB",
            "-c",
            "max_connections=200",
            *(arg for name, value in self.pg_settings.items() for arg in ("-c", f"{name}={value}")),
        ]
        proc = self._spawn("postgres", argv, **as_postgres)
        wait_until("postgres", self._alive("postgres", proc, self._postgres_answers))
        if replica_of is None:
            self.create_database()

    def _base_backup(self, folder: Path, primary_port: int, as_postgres: dict[str, Any]) -> None:
        # -R writes the standby's connection to the primary; -X stream copies the WAL written meanwhile; -c fast
        # checkpoints at once (a spread checkpoint takes minutes).
        argv = [str(PG_BIN / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(primary_port), "-U", "gateway"]
        self._run(
            "pg_basebackup", [*argv, "-D", str(folder), "-R", "-X", "stream", "-c", "fast"], cwd="/", **as_postgres
        )

    def postgres_folder(self) -> Path:
        """The cluster's folder: ``<data>/postgres``, unless the server could not use it there.

        Two things stop it: run as root, the server runs as the ``postgres`` user, who may not be allowed
        through the folders above the data (a clone under root's ``drwx------`` home, or a ``mktemp -d``); and
        its socket's path (the cluster folder, then ``.s.PGSQL.<port>``) must fit in the 107 bytes of a unix
        socket address. Then the cluster lives in a folder of its own named after the data folder (under the
        ``postgres`` user's home as root, else in the temporary folder), ``<data>/postgres`` is a symbolic link
        to it, and one line says so. Nobody's folders change their permissions. A second start follows the
        link; ``make clean`` removes both."""
        link = self.data / "postgres"
        self.data.mkdir(parents=True, exist_ok=True)
        user = _postgres_user() if os.geteuid() == 0 else None
        owner = user.pw_uid if user is not None else os.geteuid()
        why: str | None = None
        if link.is_symlink():
            folder = link.parent / os.readlink(link)
        else:
            why = self._postgres_cannot_use(link)
            if why is None:
                return link
            base = Path(tempfile.gettempdir())
            if user is not None and Path(user.pw_dir).is_dir() and Path(user.pw_dir).stat().st_uid == user.pw_uid:
                base = Path(user.pw_dir)
            folder = base / f"{CLUSTER_PREFIX}{hashlib.sha256(str(self.data).encode()).hexdigest()[:12]}"
        if folder.is_symlink() or (folder.exists() and folder.stat().st_uid != owner):
            raise StackError(f"error: {folder}: not the dev stack's cluster (not owned by uid {owner}); remove it")
        if not link.is_symlink():
            # Without the link, what the folder holds is a cluster this data folder no longer has (its data
            # was removed by hand): start again from nothing, as a cluster under <data> would.
            shutil.rmtree(folder, ignore_errors=True)
            if (link / "PG_VERSION").exists():
                shutil.move(link, folder)  # a cluster made under <data> before (the clone moved, say)
            else:
                shutil.rmtree(link, ignore_errors=True)  # what a failed initdb left, if anything
                folder.mkdir(mode=0o700)
            if user is not None:
                _chown_tree(folder, user.pw_uid, user.pw_gid)
            link.symlink_to(folder, target_is_directory=True)
        print(f"postgres: the cluster lives in {folder}, linked from {link}{f' ({why})' if why else ''}", flush=True)
        return folder

    def _postgres_cannot_use(self, folder: Path) -> str | None:
        """Why the server could not run a cluster in ``folder`` (None: it can)."""
        socket = f"{folder}/.s.PGSQL.{self.pg_port}"
        if len(socket.encode()) > MAX_SOCKET_PATH:
            return f"its socket path would be longer than the {MAX_SOCKET_PATH} bytes a unix socket allows"
        user = _postgres_user() if os.geteuid() == 0 else None
        if user is None:
            return None
        # access(2) as the server will run (its user and groups): the whole path, ACLs included.
        reach = subprocess.run(
            ["test", "-x", str(self.data)], user=user.pw_uid, group=user.pw_gid, extra_groups=_groups(user), cwd="/"
        )
        if reach.returncode != 0:
            return f"the postgres user cannot reach {self.data}"
        return None

    def _postgres_answers(self) -> bool:
        probe = subprocess.run(
            [str(PG_BIN / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.pg_port), "-U", "gateway", "-d", "postgres"],
            capture_output=True,
        )
        return probe.returncode == 0

    def create_database(self) -> None:
        """The stack's database on its PostgreSQL server, unless it is there."""
        import asyncpg

        async def create() -> None:
            conn = await asyncpg.connect(f"postgresql://gateway@127.0.0.1:{self.pg_port}/postgres")
            try:
                if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", self.database):
                    await conn.execute(f'CREATE DATABASE "{self.database}"')
            finally:
                await conn.close()

        asyncio.run(create())

    def prepare_database(self, clients: tuple[tuple[str, str, str], ...] = DEV_CLIENTS) -> None:
        self._run_cli(["gateway", "migrate"])
        for client_id, secret, role in clients:
            self._run_cli(["gateway", "add-client", client_id, secret, role])
        self._run_cli(["dedup", "ensure"])

    def _run_cli(self, argv: list[str]) -> None:
        self._run(" ".join(argv[:2]), [str(VENV_BIN / argv[0]), *argv[1:]], env=self.env)

    def _run(
        self, name: str, argv: list[str], env: dict[str, str] | None = None, cwd: str | Path = ROOT, **credentials: Any
    ) -> None:
        """Run one command to its end; its output goes to its log (logs/<first word>.log), and a failure is a
        ``StackError`` rather than a traceback."""
        self.logs.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, errors="replace", **credentials)
        log = self.logs / f"{name.replace(' ', '-')}.log"
        with open(log, "a") as f:
            f.write(done.stdout + done.stderr)
        if done.returncode != 0:
            raise _failure(name, done.returncode, done.stderr or done.stdout, log)

    def start_simulator(
        self, port: int | None = None, env: dict[str, str] | None = None, name: str = "simulator"
    ) -> subprocess.Popen[bytes]:
        """The verification-service simulator (on the stack's port unless given one), once it answers."""
        port = port or self.sim_port
        proc = self._spawn(name, [str(VENV_BIN / "gateway-worker"), "simulator", "--port", str(port)], env=env)
        url = f"http://127.0.0.1:{port}/healthz"
        wait_until(name, self._alive(name, proc, lambda: http_ok(url)))
        return proc

    def start_national_simulator(self, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """The national monitoring platform's simulator, once it answers."""
        name = "national-simulator"
        argv = [str(VENV_BIN / "gateway-worker"), name, "--port", str(self.national_port)]
        proc = self._spawn(name, argv, env=env)
        url = f"http://127.0.0.1:{self.national_port}/healthz"
        wait_until(name, self._alive(name, proc, lambda: http_ok(url)))
        return proc

    def start_export(self, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """The export process: the outbox relay to the national platform, and the closing of days."""
        return self._spawn("export", [str(VENV_BIN / "gateway-worker"), "export"], env=env)

    def reset_metrics(self) -> None:
        """Start the multiprocess metrics folder empty: it holds the live processes' files only."""
        metrics = self.data / "metrics"
        shutil.rmtree(metrics, ignore_errors=True)
        metrics.mkdir(parents=True)

    def start_gateway(
        self, processes: int = 2, port: int | None = None, env: dict[str, str] | None = None, name: str = "gateway"
    ) -> subprocess.Popen[bytes]:
        """A gunicorn serving the gateway (by default the stack's own, on its port)."""
        port = self.port if port is None else port
        self.ensure_keys()
        argv = [
            str(VENV_BIN / "gunicorn"),
            "-c",
            str(ROOT / "deploy" / "gunicorn.conf.py"),
            "-b",
            f"127.0.0.1:{port}",
            "-w",
            str(processes),
        ]
        proc = self._spawn(name, argv, env=env)
        url = f"http://127.0.0.1:{port}/readyz"
        wait_until(name, self._alive(name, proc, lambda: http_ok(url)))
        return proc

    def start_workers(self, processes: int = 1) -> None:
        for i in range(processes):
            self._spawn(f"worker-{i}", [str(VENV_BIN / "gateway-worker"), "run"])

    def start_stores(self) -> None:
        """Redis and PostgreSQL, migrated, with the dev clients and the dedup filters."""
        self.reset_metrics()
        self.start_redis()
        self.start_postgres()
        self.prepare_database()

    def start_all(self, gateway_processes: int = 2, worker_processes: int = 1) -> None:
        """Every process of the dev stack, in order."""
        self.start_stores()
        if self.runs("GATEWAY_VERIFY_URL"):
            self.start_simulator()
        if self.runs("GATEWAY_EXPORT_URL"):
            self.start_national_simulator()
        self.start_gateway(gateway_processes)
        self.start_workers(worker_processes)
        self.start_export()

    def stop(self, grace_s: float = 15.0) -> None:
        """SIGTERM each process (newest first), then SIGKILL whatever outlives the grace period."""
        for _, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT if proc.args[0].endswith("postgres") else signal.SIGTERM)
            deadline = time.monotonic() + grace_s
            while proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.procs.clear()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT / ".data")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--redis-port", type=int, default=6390, help="(a cluster: its first of six ports)")
    parser.add_argument("--redis", choices=("single", "cluster"), default="single")
    parser.add_argument("--pg-port", type=int, default=5440)
    parser.add_argument("--sim-port", type=int, default=8090)
    parser.add_argument("--national-port", type=int, default=8095)
    parser.add_argument("--gateway-processes", type=int, default=2)
    parser.add_argument("--worker-processes", type=int, default=1)
    parser.add_argument("--campaign", type=Path, help=f"the campaign file (default: {CAMPAIGN.relative_to(ROOT)})")
    args = parser.parse_args()
    cluster = args.redis == "cluster"
    campaign = args.campaign or (CLUSTER_CAMPAIGN if cluster else CAMPAIGN)
    stack = Stack(
        args.data,
        redis_port=args.redis_port,
        pg_port=args.pg_port,
        sim_port=args.sim_port,
        port=args.port,
        campaign=campaign,
        national_port=args.national_port,
        callers_env=True,
        cluster_ports=[args.redis_port + i for i in range(CLUSTER_NODES)] if cluster else None,
    )
    from core import campaign as campaigns
    from core.settings import ConfigError, from_env, stack_env_text

    try:  # what every part would refuse, said once before anything starts
        from_env(stack.env)
        campaigns.load(stack.campaign)
    except ConfigError as exc:
        print(exc.line(), file=sys.stderr, flush=True)
        return EXIT_CONFIG
    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    status = 0
    stack_env = stack.data / "stack.env"
    try:
        stack.start_all(args.gateway_processes, args.worker_processes)
        stack_env.write_text(stack_env_text(stack.env))
        print_banner(stack)
        while not stopping:
            for line in stack.supervise():
                print(line, flush=True)
            time.sleep(0.2)
    except StackError as exc:
        print(exc, file=sys.stderr, flush=True)
        status = exc.status
    except TimeoutError as exc:
        print(f"error: {exc} (logs in {stack.logs})", file=sys.stderr, flush=True)
        status = 1
    finally:
        print("stopping the dev stack ...", flush=True)
        stack_env.unlink(missing_ok=True)
        stack.stop()
        print("stopped.", flush=True)
    return status


def print_banner(stack: Stack) -> None:
    print(
        f"""
Prize-invoice gateway dev stack is up (data in {stack.data}, logs in {stack.logs})
  gateway     http://127.0.0.1:{stack.port}   (/healthz /readyz /metrics, /v1/...)
  console     http://127.0.0.1:{stack.port}/console   (an account: .venv/bin/gateway add-staff NAME --role admin)
  redis       {_redis_line(stack)}    postgres 127.0.0.1:{stack.pg_port} (db gateway, user gateway)
  simulator   {stack.env["GATEWAY_VERIFY_URL"]}/verify
  national    {stack.env["GATEWAY_EXPORT_URL"]}/sandbox/received   (the national platform's simulator)
  reports     {stack.env["GATEWAY_REPORTS_DIR"]}   settings of this stack: {stack.data / "stack.env"}
Dev clients (client id / secret / role):""",
        flush=True,
    )
    for client_id, secret, role in DEV_CLIENTS:
        print(f"  {client_id:16} {secret:24} {role}", flush=True)
    print("Try: .venv/bin/python -m loadtest.try_it   then: .venv/bin/gateway reconcile", flush=True)
    print(
        f"Draws: .venv/bin/draw commit ID --to +2m, then draw run ID (docs/draw.md; in {stack.data / 'draws'})",
        flush=True,
    )
    print("Ctrl-C stops everything.", flush=True)


def _redis_line(stack: Stack) -> str:
    if not stack.cluster_ports:
        return f"127.0.0.1:{stack.redis_port}"
    ports = stack.cluster_ports
    return f"cluster 127.0.0.1:{ports[0]}-{ports[-1]} (redis-cli -c -p {ports[0]}; campaign {stack.campaign.name})"


if __name__ == "__main__":
    sys.exit(main())
