"""What the benchmarks share: a stack of their own (the launcher's ``Stack``), and saving their results."""

from __future__ import annotations

import contextlib
import json
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


@contextlib.contextmanager
def bench_stack(
    full: bool,
    campaign: Path | None = None,
    extra_env: dict[str, str] | None = None,
    workers: int = 1,
    name: str = "bench",
) -> Iterator[Any]:
    """Redis and PostgreSQL under .data/NAME on free ports; with ``full``, also the simulator, the gateway
    (2 processes) and ``workers`` workers. Stopped and removed afterwards."""
    from deploy import devstack

    data = ROOT / ".data" / name
    shutil.rmtree(data, ignore_errors=True)
    port = devstack.free_port
    options: dict[str, Any] = {"extra_env": extra_env}
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
        shutil.rmtree(data, ignore_errors=True)


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
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    table = markdown(result)
    (RESULTS / f"{name}.md").write_text(f"# {title} ({result['measured_at']})\n\n{table}")
    print(table)
