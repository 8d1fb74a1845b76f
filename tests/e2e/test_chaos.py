"""The chaos drill, short (deploy/chaos.py; make chaos runs it for ten minutes): two channels upload for a minute
while every fault of the issue runs, several at once, on a stack of the drill's own; then nothing accepted is lost
or doubled, the chain recomputes, no answer is outside the allowed ones, and the day reconciles."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deploy import chaos
from deploy.devstack import remove_data


def test_a_minute_of_faults_under_load_loses_nothing_and_reconciles(tmp_path: Path, capsys: Any) -> None:
    try:
        status = chaos.run(60.0, tmp_path / "chaos", seed=17)
    finally:
        # tmp_path is private, so the drill's cluster lived in a folder of its own (Stack.postgres_folder): pytest
        # removes tmp_path, not that folder (about 600 MB left in the postgres user's home by each run before).
        remove_data(tmp_path / "chaos")
    out = capsys.readouterr().out
    assert status == 0, out
    assert "chaos: OK" in out
    for name in chaos.ROUNDS[0] + chaos.ROUNDS[1] + chaos.ROUNDS[2] + chaos.ROUNDS[3] + chaos.ROUNDS[4]:
        assert f"\n{name}" in out, f"{name} not done:\n{out}"
