"""The dev stack as a new user runs it: start, use as a channel and as the draw service, Ctrl-C, nothing left."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent.parent


def test_devstack_carries_uploads_to_the_feed_and_stops_cleanly_on_sigint(wait_for: Any) -> None:
    from deploy.devstack import free_port, listening

    data = ROOT / ".data" / "test-e2e"
    shutil.rmtree(data, ignore_errors=True)
    ports = {name: free_port() for name in ("port", "redis-port", "pg-port", "sim-port")}
    argv = [sys.executable, str(ROOT / "deploy" / "devstack.py"), "--data", str(data)]
    for name, port in ports.items():
        argv += [f"--{name}", str(port)]
    launcher = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{ports['port']}"
    try:
        wait_for(lambda: _ready(url) or launcher.poll() is not None, 90)
        assert launcher.poll() is None, launcher.stdout.read() if launcher.stdout else ""
        # The try-it script: a mixed upload, a cross-channel duplicate, the feed read by long poll with its
        # chain recomputed, one status; it exits non-zero if the valid invoices do not reach the feed.
        tried = subprocess.run(
            [sys.executable, "-m", "loadtest.try_it", "--url", url],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
        )
        assert tried.returncode == 0, tried.stdout + tried.stderr
        assert "chain ok" in tried.stdout and "BROKEN" not in tried.stdout
        assert "same invoice from demo-channel-2 -> duplicate" in tried.stdout
    finally:
        launcher.send_signal(signal.SIGINT)
        out, _ = launcher.communicate(timeout=60)
    assert launcher.returncode == 0, out
    assert "demo-channel-secret" in out and "stopped." in out
    for port in ports.values():
        assert not listening(port), f"port {port} still listening after SIGINT"
    leftovers = subprocess.run(["pgrep", "-f", str(data)], capture_output=True, text=True).stdout
    assert not leftovers.strip(), f"processes left: {leftovers}"


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
