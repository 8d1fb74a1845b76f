"""A short locust run of the evening shape against the test stack: only expected statuses, and real traffic."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.e2e.test_crash import FAST

ROOT = Path(__file__).resolve().parent.parent.parent
LOCUST = Path(sys.executable).parent / "locust"


def test_evening_shape_in_miniature_gets_only_expected_answers(stack: Any, base_url: str, drain: Any) -> None:
    from deploy.devstack import VENV_BIN

    drain()
    out = stack.data / "locust"
    out.mkdir(parents=True, exist_ok=True)
    # A worker, so that the draw user reads sealed batches and checks their chain; quick re-checks, so that the
    # drain at the end does not wait out the sandbox's "not found" delays.
    worker = stack._spawn("locust-worker", [str(VENV_BIN / "gateway-worker"), "run"], env=FAST)
    env = {
        **stack.env,
        "PROMO_SECONDS": "20",
        "PROMO_PEAK_USERS": "6",
        "LOAD_FEED_WAIT_S": "2",
        "LOAD_OUTCOMES_FILE": str(out / "outcomes.json"),
    }
    argv = [str(LOCUST), "-f", str(ROOT / "loadtest" / "locustfile.py"), "--headless", "--host", base_url]
    argv += ["--csv", str(out / "smoke"), "--only-summary"]
    try:
        run = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
    drain()  # leave nothing queued for the tests after this one

    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    with open(out / "smoke_stats.csv") as f:
        stats = {row["Name"]: row for row in csv.DictReader(f)}
    for name in (
        "POST /v1/invoices [batch]",
        "POST /v1/invoices [single]",
        "POST /v1/invoices [malformed]",
        "GET /v1/feed (long poll)",
    ):
        assert int(stats[name]["Request Count"]) > 0, name
    assert int(stats["Aggregated"]["Failure Count"]) == 0
    outcomes = json.loads((out / "outcomes.json").read_text())
    seen = {label.split()[1] for label in outcomes}
    assert {"accepted", "duplicate", "rejected"} <= seen, outcomes
    assert any(label.startswith("capped rejected person_") for label in outcomes), outcomes
