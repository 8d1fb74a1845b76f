"""Slots move between primaries (``redis-cli --cluster reshard``) while two channels upload and workers run: the
gateway and the workers follow MOVED and ASK, and nothing promised is lost or doubled."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from core import campaign as campaigns
from core import keys
from deploy import rediscluster
from loadtest.client import SignedClient
from tests.e2e.test_failover import Uploads, committed, promises_kept, start_workers
from tests.topology import ON_CLUSTER

MAX_SLOTS = 3000  # slots moved at most (each empty one is a few commands; a loaded one migrates its keys)


@ON_CLUSTER
def test_slots_moving_under_load_lose_nothing_and_double_nothing(
    target_stack: Any, base_url: str, draw: SignedClient, sql: Any, wait_for: Any
) -> None:
    ports = target_stack.cluster_ports
    shards = campaigns.load(Path(target_stack.env["GATEWAY_CAMPAIGN_FILE"])).dedup.shards
    source, count, slot = _slots_to_move(ports[0], shards)
    target = next(n for n in rediscluster.nodes(ports[0]) if n.primary and n.slots and n.id != source.id)
    workers = start_workers(target_stack, "reshard")
    with Uploads(base_url) as uploads:
        wait_for(lambda: committed(sql, uploads) > 100, 120)
        argv = [rediscluster.redis_cli(), "--cluster", "reshard", f"127.0.0.1:{ports[0]}"]
        argv += ["--cluster-from", source.id, "--cluster-to", target.id, "--cluster-slots", str(count), "--cluster-yes"]
        moved = subprocess.run(argv, capture_output=True, text=True, timeout=300)
        assert moved.returncode == 0, moved.stdout[-2000:] + moved.stderr[-2000:]
        since = uploads.count()
        wait_for(lambda: uploads.count() > since + 200, 120)

    assert rediscluster.primary_of(ports[0], slot).id == target.id  # a shard's keys moved under the load
    promises_kept(uploads, workers, base_url, sql, draw, wait_for)


def _slots_to_move(port: int, shards: int) -> tuple[rediscluster.Node, int, int]:
    """The primary, the number of slots from the start of its first range, and the intake shard's slot they
    reach: the fewest slots whose move carries a shard's keys (redis-cli moves a source's lowest slots first)."""
    best: tuple[rediscluster.Node, int, int] | None = None
    for shard in range(shards):
        slot = rediscluster.key_slot(port, keys.stream(shard))
        node = rediscluster.primary_of(port, slot)
        first = min(start for start, _ in node.slots)
        count = sum(min(last, slot) - start + 1 for start, last in node.slots if start <= slot)
        if slot >= first and (best is None or count < best[1]):
            best = (node, count, slot)
    assert best is not None and best[1] <= MAX_SLOTS, best
    return best
