"""What the benchmarks share: a stack of their own (the launcher's ``Stack``), and saving their results."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


def load_devstack() -> Any:
    spec = importlib.util.spec_from_file_location("devstack", ROOT / "deploy" / "devstack.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def bench_stack(full: bool, env: dict[str, str] | None = None) -> Iterator[Any]:
    """Redis and PostgreSQL under .data/bench on free ports; with ``full``, also the simulator, the gateway
    (2 processes) and 1 worker, with ``env`` added to the processes' environment. Stopped and removed
    afterwards."""
    devstack = load_devstack()
    data = ROOT / ".data" / "bench"
    shutil.rmtree(data, ignore_errors=True)
    port = devstack.free_port
    stack = devstack.Stack(data, redis_port=port(), pg_port=port(), sim_port=port(), port=port(), extra_env=env)
    try:
        if full:
            stack.start_all(gateway_processes=2, worker_processes=1)
        else:
            stack.start_stores()
        yield stack
    finally:
        stack.stop()
        shutil.rmtree(data, ignore_errors=True)


def save(name: str, title: str, result: dict[str, Any], markdown: Callable[[dict[str, Any]], str]) -> None:
    """benchmarks/results/NAME.json and NAME.md, and the table on stdout."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    result["measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    table = markdown(result)
    (RESULTS / f"{name}.md").write_text(f"# {title} ({result['measured_at']})\n\n{table}")
    print(table)
