"""Two gateway hosts and a worker host, each a network namespace of its own (``ip netns``, a veth on a bridge),
behind Debian's HAProxy with deploy/haproxy/haproxy.cfg health-checking /readyz. SIGTERM on one gateway host
loses no request; SIGKILL of every process of the other host sends its traffic to the first within the health
check's interval; every invoice accepted through the load balancer is recorded by the worker host.

The session stack's stores listen on loopback only: the hosts reach them through the same HAProxy (TCP
listeners on the bridge's address, a test-only config beside the deploy one), as hosts would reach them over
a network. Namespaces, bridge and processes are removed whatever happens."""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import pytest

from deploy.devstack import VENV_BIN, free_port, http_ok, wait_until
from loadtest import sample
from loadtest.client import SignedClient
from tests.conftest import ROOT
from tests.e2e.test_crash import FAST, _all_final

CONFIG = ROOT / "deploy" / "haproxy" / "haproxy.cfg"
HOSTS = ("gw1", "gw2", "wk")
GATEWAY_PORT = 8080
DRAIN_DELAY_S = "2"  # above 2 health checks (haproxy.cfg: inter 500ms, fall 2)
TAKEN_OUT_S = 1.0 + 1.0  # fall 2 x inter 500 ms, plus a check's own timeout (1 s)
IN_FLIGHT_S = 1.0  # a 10-invoice upload sent this long before the kill has its answer by then


class Net(NamedTuple):
    prefix: str  # of the namespaces' and links' names
    subnet: str  # "10.218.N": the bridge is .1, the hosts .11, .12, .13

    def ns(self, host: str) -> str:
        return f"{self.prefix}-{host}"

    def address(self, host: str) -> str:
        return f"{self.subnet}.{11 + HOSTS.index(host)}"

    @property
    def bridge_address(self) -> str:
        return f"{self.subnet}.1"


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


def build(net: Net) -> None:
    bridge = f"{net.prefix}br"
    ip("link", "add", bridge, "type", "bridge")
    ip("addr", "add", f"{net.bridge_address}/24", "dev", bridge)
    ip("link", "set", bridge, "up")
    for host in HOSTS:
        ns, link = net.ns(host), f"{net.prefix}{host}"
        ip("netns", "add", ns)
        ip("link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", ns)
        ip("link", "set", link, "master", bridge, "up")
        ip("-n", ns, "addr", "add", f"{net.address(host)}/24", "dev", "eth0")
        ip("-n", ns, "link", "set", "eth0", "up")
        ip("-n", ns, "link", "set", "lo", "up")


def kill_host(net: Net, host: str) -> None:
    """SIGKILL every process of the host (its namespace)."""
    pids = subprocess.run(["ip", "netns", "pids", net.ns(host)], capture_output=True, text=True).stdout.split()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)


def tear_down(net: Net) -> None:
    for host in HOSTS:
        kill_host(net, host)
        subprocess.run(["ip", "netns", "del", net.ns(host)], capture_output=True)
    subprocess.run(["ip", "link", "del", f"{net.prefix}br"], capture_output=True)


@pytest.fixture
def net() -> Iterator[Net]:
    if os.geteuid() != 0 or shutil.which("haproxy") is None:
        pytest.fail("this test needs root (ip netns) and haproxy: make system-deps, and run the suite as root")
    n = os.getpid() % 200
    found = Net(f"t18n{n}", f"10.218.{n + 20}")
    tear_down(found)  # what a killed run of this process id left
    try:
        build(found)
        yield found
    finally:
        tear_down(found)


def stores_config(stack: Any, net: Net, path: Path) -> Path:
    """TCP listeners on the bridge's address for the stack's Redis, PostgreSQL and simulator."""
    lines = ["defaults", "    mode tcp", "    timeout connect 1s", "    timeout client 1h", "    timeout server 1h"]
    for name, port in (("redis", stack.redis_port), ("postgres", stack.pg_port), ("simulator", stack.sim_port)):
        lines += [f"listen {name}", f"    bind {net.bridge_address}:{port}", f"    server local 127.0.0.1:{port}"]
    path.write_text("\n".join(lines) + "\n")
    return path


def own_folder(parent: Path, name: str) -> Path:
    """A host's metrics folder, empty: as on a host of its own, and so that a host killed here leaves nothing
    in the session stack's folder (its gauges would stay in the stack's sums)."""
    folder = parent / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def listening_at(address: str, port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex((address, port)) == 0


class Traffic:
    """Two channels uploading through the load balancer: each answer's status, host, and when it was asked."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.answers: list[tuple[float, int, str]] = []  # (sent at, status or 0 for no answer, host)
        self.accepted: list[str] = []
        self.stop = threading.Event()
        self.lock = threading.Lock()
        channels = (("demo-channel", "demo-channel-secret"), ("demo-channel-2", "demo-channel-2-secret"))
        self.threads = [threading.Thread(target=self._run, args=(c, s, i)) for i, (c, s) in enumerate(channels)]

    def _run(self, channel_id: str, secret: str, seed: int) -> None:
        rng = random.Random(seed + 1000)
        with SignedClient(self.url, channel_id, secret) as channel:
            while not self.stop.is_set():
                sent = time.monotonic()
                try:
                    answer = channel.upload([sample.invoice(rng) for _ in range(10)])
                except httpx.HTTPError:  # no answer at all: counted as such
                    with self.lock:
                        self.answers.append((sent, 0, ""))
                    continue
                with self.lock:
                    self.answers.append((sent, answer.status_code, answer.headers.get("x-served-by", "")))
                    if answer.status_code in (200, 202):
                        self.accepted += [r["key"] for r in answer.json()["results"] if r["status"] == "accepted"]

    def since(self, t: float) -> list[tuple[float, int, str]]:
        with self.lock:
            return [a for a in self.answers if a[0] >= t]

    def served_by(self, host: str, t: float) -> bool:
        return any(a[2] == host and a[1] in (200, 202) for a in self.since(t))


def test_gateway_hosts_behind_haproxy_lose_no_request_on_sigterm_and_fail_over_on_sigkill(
    stack: Any, net: Net, sql: Any, wait_for: Any
) -> None:
    lb_port = free_port()
    folder = stack.data / "load-balancer"
    folder.mkdir(exist_ok=True)
    at = net.bridge_address
    remote = {
        "GATEWAY_REDIS_URL": f"redis://{at}:{stack.redis_port}/0",
        "GATEWAY_DATABASE_URL": f"postgresql://gateway@{at}:{stack.pg_port}/{stack.database}",
        "GATEWAY_VERIFY_URL": stack.env["GATEWAY_VERIFY_URL"].replace("127.0.0.1", at),
        "GATEWAY_DRAIN_DELAY_S": DRAIN_DELAY_S,
    }
    lb_env = {"LB_BIND": f"127.0.0.1:{lb_port}", "GATEWAY_1": f"{net.address('gw1')}:{GATEWAY_PORT}"}
    lb_env["GATEWAY_2"] = f"{net.address('gw2')}:{GATEWAY_PORT}"
    argv = ["haproxy", "-db", "-f", str(CONFIG), "-f", str(stores_config(stack, net, folder / "stores.cfg"))]
    stack._spawn("haproxy", argv, env=lb_env)
    wait_until("haproxy", lambda: listening_at(at, stack.pg_port), 30)

    def gateway(host: str) -> subprocess.Popen[bytes]:
        bind = f"{net.address(host)}:{GATEWAY_PORT}"
        command = [str(VENV_BIN / "gunicorn"), "-c", str(ROOT / "deploy" / "gunicorn.conf.py"), "-b", bind, "-w", "1"]
        env = {**remote, "PROMETHEUS_MULTIPROC_DIR": str(own_folder(folder, f"metrics-{host}"))}
        proc = stack._spawn(f"lb-{host}", ["ip", "netns", "exec", net.ns(host), *command], env=env)
        return proc

    first = gateway("gw1")
    gateway("gw2")
    worker = stack._spawn(
        "lb-worker",
        ["ip", "netns", "exec", net.ns("wk"), str(VENV_BIN / "gateway-worker"), "run"],
        env={**remote, **FAST, "PROMETHEUS_MULTIPROC_DIR": str(own_folder(folder, "metrics-wk"))},
    )
    url = f"http://127.0.0.1:{lb_port}"
    wait_until("load balancer", lambda: http_ok(f"{url}/readyz"), 60)
    traffic = Traffic(url)
    for t in traffic.threads:
        t.start()
    try:
        t0 = time.monotonic()
        wait_for(lambda: traffic.served_by("gateway-1", t0) and traffic.served_by("gateway-2", t0), 60)
        # SIGTERM on gateway-1: out of rotation while it still serves, then gone; not one request lost.
        first.send_signal(signal.SIGTERM)
        first.wait(60)
        t1 = time.monotonic()
        wait_for(lambda: len(traffic.since(t1)) > 20, 60)
        first = gateway("gw1")
        wait_for(lambda: traffic.served_by("gateway-1", time.monotonic() - 1), 60)
        # SIGKILL of the whole host gateway-2: its traffic goes to gateway-1 within the health check.
        killed = time.monotonic()
        kill_host(net, "gw2")
        wait_for(lambda: len(traffic.since(killed + TAKEN_OUT_S)) > 20, 60)
    finally:
        traffic.stop.set()
        for t in traffic.threads:
            t.join(60)

    # Every request answered through the SIGTERM; those in flight on the killed host may fail (none but those).
    before = [status for sent, status, _ in traffic.answers if sent < killed - IN_FLIGHT_S]
    assert before and all(status in (200, 202) for status in before), traffic.answers[-50:]
    late = traffic.since(killed + TAKEN_OUT_S)
    assert late and all(status in (200, 202) and host == "gateway-1" for _, status, host in late)
    try:
        wait_for(lambda: _all_final(sql, traffic.accepted), 180)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)
        first.send_signal(signal.SIGTERM)
        first.wait(30)
    rows = sql("SELECT count(*) AS n FROM invoices WHERE key = ANY($1)", traffic.accepted)
    assert rows[0]["n"] == len(set(traffic.accepted)) == len(traffic.accepted) > 100
