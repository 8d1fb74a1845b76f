"""The signing examples of docs/examples, in Java and Go, give what docs/vectors says: every request signature,
and every receipt verified or refused as it should be."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
VECTORS = ROOT / "docs" / "vectors"


def cases() -> tuple[str, list[str]]:
    """The example's input lines, and the output each must give."""
    lines, wanted = [], []
    for c in json.loads((VECTORS / "signing.json").read_text())["cases"]:
        fields = ["sign", c["secret"], c["method"], c["path_and_query"], c["timestamp"], c["nonce"], c["body_base64"]]
        lines.append("\t".join(fields))
        wanted.append(c["signature"])
    r = json.loads((VECTORS / "receipts.json").read_text())
    for tree in r["trees"]:
        for key, receipt in zip(tree["keys"], tree["receipts"], strict=True):
            lines.append("\t".join(["verify", r["public_key_jwk_x"], key, tree["channel"], receipt]))
            wanted.append(f"valid {tree['accepted_at_ms']}")
    for bad in r["invalid"]:
        lines.append("\t".join(["verify", r["public_key_jwk_x"], bad["key"], bad["channel"], bad["receipt"]]))
        wanted.append("invalid")
    return "\n".join(lines) + "\n", wanted


def run(argv: list[str], env: dict[str, str] | None = None) -> list[str]:
    stdin, wanted = cases()
    done = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == wanted
    return wanted


def test_the_java_example_signs_and_verifies_as_the_vectors_say(tmp_path: Path) -> None:
    subprocess.run(["javac", "-d", str(tmp_path), str(ROOT / "docs" / "examples" / "Signing.java")], check=True)
    assert len(run(["java", "-cp", str(tmp_path), "Signing"])) > 10


def test_the_go_example_signs_and_verifies_as_the_vectors_say(tmp_path: Path) -> None:
    env = {**os.environ, "GOCACHE": str(tmp_path / "cache"), "GOPATH": str(tmp_path / "go"), "GOFLAGS": ""}
    assert len(run(["go", "run", str(ROOT / "docs" / "examples" / "signing.go")], env)) > 10
