"""The dev stack as a new user runs it: start, use as a channel and as the draw service, Ctrl-C, nothing left."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent.parent


def test_devstack_carries_uploads_to_the_feed_and_stops_cleanly_on_sigint(wait_for: Any, tmp_path: Path) -> None:
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
        _draw_and_verify_elsewhere(data, url, tmp_path)
    finally:
        launcher.send_signal(signal.SIGINT)
        out, _ = launcher.communicate(timeout=60)
    assert launcher.returncode == 0, out
    assert "demo-channel-secret" in out and "stopped." in out
    for port in ports.values():
        assert not listening(port), f"port {port} still listening after SIGINT"
    leftovers = subprocess.run(["pgrep", "-f", str(data)], capture_output=True, text=True).stdout
    assert not leftovers.strip(), f"processes left: {leftovers}"


def _draw_and_verify_elsewhere(data: Path, url: str, elsewhere: Path) -> None:
    """The reference draw's commands as docs/draw.md walks through them: commit, uploads in the window, run;
    then verify in another folder from an archive of the feed, with a copy of draw/ and the standard library."""
    env = dict(os.environ)
    for line in (data / "stack.env").read_text().splitlines():
        name, _, value = line.partition("=")
        if name.startswith("GATEWAY_"):
            env[name] = shlex.split(value)[0] if value else ""
    env["GATEWAY_DRAW_SETTLE_S"] = "1"

    def draw(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([str(ROOT / ".venv" / "bin" / "draw"), *args], env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
        return done

    draw("commit", "e2e-1", "--to", "+20s", "--randomness", "a beacon")
    tried = subprocess.run([sys.executable, "-m", "loadtest.try_it", "--url", url], capture_output=True, timeout=60)
    assert tried.returncode == 0
    assert " winners, seed " in draw("run", "e2e-1", "--randomness-value", "42").stdout
    draw("archive", "--out", str(elsewhere / "feed"))
    (elsewhere / "key.jwk").write_text(draw("public-key").stdout)
    shutil.copy(Path(env["GATEWAY_DRAW_DIR"]) / "e2e-1" / "result.json", elsewhere)
    shutil.copytree(ROOT / "draw", elsewhere / "draw", ignore=shutil.ignore_patterns("__pycache__"))
    argv = ["-S", "-m", "draw", "verify", "--result", "result.json", "--feed", "feed", "--key", "key.jwk"]
    done = subprocess.run([sys.executable, *argv], cwd=elsewhere, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip().endswith("OK: the draw holds"), done.stdout + done.stderr


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
