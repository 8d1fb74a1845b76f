"""A local Redis Cluster for the dev stack (``make run REDIS=cluster``) and the tests: primaries with one replica
each, Debian's redis-server in cluster mode on loopback ports, each node's data under ``<folder>/<port>``.

The nodes run with the single Redis's config (deploy/redis/redis.conf: AOF, fsync every second, no eviction)
and these cluster settings:

- ``cluster-node-timeout`` 1 s: a primary that stops answering is failed over by its replica within a few
  seconds (production: 5 to 15 s, against false failovers on a busy network);
- ``cluster-require-full-coverage no``: while a primary is down, only its slots refuse commands; the others
  go on (the gateway answers 503 only for uploads that touch its shards);
- ``cluster-replica-validity-factor 0``: a replica takes over however long it was cut off from its primary
  (it may lack the primary's last writes, which is why an upload waits for a replica's acknowledgement).

A second start on the same folder brings the same cluster back (each node's ``nodes.conf``).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent
CONF = ROOT / "deploy" / "redis" / "redis.conf"
NODE_TIMEOUT_MS = 1000
SLOTS = 16384


class Node(NamedTuple):
    """A node as CLUSTER NODES shows it."""

    id: str
    port: int
    primary: bool
    primary_id: str  # its primary's id, for a replica ("" for a primary)
    slots: tuple[tuple[int, int], ...]  # ranges, both ends included
    failed: bool


def redis_cli() -> str:
    return shutil.which("redis-cli") or "redis-cli"


def node_argv(port: int, folder: Path) -> list[str]:
    """The command line of the node on ``port``, its data in ``folder``."""
    return [
        shutil.which("redis-server") or "redis-server",
        str(CONF),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(folder),
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        "nodes.conf",
        "--cluster-node-timeout",
        str(NODE_TIMEOUT_MS),
        "--cluster-require-full-coverage",
        "no",
        "--cluster-replica-validity-factor",
        "0",
    ]


def formed(folder: Path, port: int) -> bool:
    """Whether the node on ``port`` has been part of a cluster already (its ``nodes.conf``)."""
    return (folder / str(port) / "nodes.conf").exists()


def create(ports: list[int], replicas: int = 1) -> None:
    """Join fresh nodes into one cluster: the first ports become primaries, the rest their replicas."""
    argv = [redis_cli(), "--cluster", "create", *(f"127.0.0.1:{p}" for p in ports)]
    subprocess.run([*argv, "--cluster-replicas", str(replicas), "--cluster-yes"], check=True, capture_output=True)


def command(port: int, *args: str, timeout_s: float = 2.0) -> str:
    """A command's answer from one node, as redis-cli prints it ("" when the node does not answer)."""
    try:
        done = subprocess.run(
            [redis_cli(), "-p", str(port), *args], capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired:
        return ""
    return done.stdout if done.returncode == 0 else ""


def nodes(port: int) -> list[Node]:
    """Every node as the node on ``port`` sees them."""
    found = []
    for line in command(port, "CLUSTER", "NODES").splitlines():
        fields = line.split()
        if len(fields) < 8:
            continue
        flags = fields[2].split(",")
        ranges = []
        for part in fields[8:]:
            if part.startswith("["):  # a slot being migrated or imported
                continue
            first, _, last = part.partition("-")
            ranges.append((int(first), int(last or first)))
        node_port = int(fields[1].split("@")[0].rsplit(":", 1)[1])
        primary_id = "" if fields[3] == "-" else fields[3]
        failed = "fail" in flags or "fail?" in flags
        found.append(Node(fields[0], node_port, "master" in flags, primary_id, tuple(ranges), failed))
    return found


def healthy(ports: list[int]) -> bool:
    """Every node answers and says the cluster is ok with every slot served, and each primary has a replica
    linked to it (so that an acknowledgement by one replica can be had)."""
    for port in ports:
        info = command(port, "CLUSTER", "INFO")
        if "cluster_state:ok" not in info or f"cluster_slots_ok:{SLOTS}" not in info:
            return False
    seen = nodes(ports[0])
    primaries = {n.id for n in seen if n.primary and n.slots and not n.failed}
    linked = {n.primary_id for n in seen if not n.primary and not n.failed and _linked(n.port)}
    return len(seen) == len(ports) and primaries <= linked


def _linked(port: int) -> bool:
    return "master_link_status:up" in command(port, "INFO", "replication")


def primary_of(port: int, slot: int) -> Node:
    """The primary serving ``slot``, as the node on ``port`` sees it."""
    for node in nodes(port):
        if node.primary and any(first <= slot <= last for first, last in node.slots):
            return node
    raise LookupError(f"no primary serves slot {slot}")


def key_slot(port: int, key: str) -> int:
    """The slot of a key, as Redis computes it (CLUSTER KEYSLOT)."""
    return int(command(port, "CLUSTER", "KEYSLOT", key).strip())


def free_ports(count: int) -> list[int]:
    """``count`` free ports whose cluster bus ports (port + 10000) are free too."""
    found: list[int] = []
    while len(found) < count:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port + 10000 < 65536 and port not in found and _free(port + 10000):
            found.append(port)
    return found


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True
