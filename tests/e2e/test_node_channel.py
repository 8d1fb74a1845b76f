""" "How we will know" (issue 15): a fresh channel client in another language (Node.js), written from /docs and
docs/ alone, passes the signature vectors, uploads, sees every rejection's code in the documented tables, reads
every status change of its invoices in order through the change feed (and resumes after a dropped long poll),
and verifies its receipts offline with the published key."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent.parent
SCRIPT = Path(__file__).resolve().parent / "node" / "channel.mjs"


def node(*args: str) -> dict[str, Any]:
    env = {**os.environ, "CHANNEL_ID": "demo-channel", "CHANNEL_SECRET": "demo-channel-secret"}
    done = subprocess.run(["node", str(SCRIPT), *args], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    report: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return report


def test_a_node_channel_written_from_the_docs_alone(base_url: str, drain: Any, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    uploaded = node("upload", base_url, str(state), str(ROOT / "docs" / "vectors"))
    assert uploaded["signatures"] == 6
    assert uploaded["rejections"] == ["invalid_amount", "unknown_field", "invalid_number", "invalid_issue_date"]
    assert uploaded["codes"] == [
        "404 unknown_invoice",
        "400 unknown_field",
        "400 invoice_count",
        "415 unsupported_media_type",
        "403 wrong_role",
        "401 stale_timestamp",
    ]
    drain()
    followed = node("follow", base_url, str(state))
    assert followed["verified"] == 5 and followed["seen"]["plain"] == ["verified", "eligible"]
    print("node channel:", json.dumps(uploaded, ensure_ascii=False), json.dumps(followed, ensure_ascii=False))
