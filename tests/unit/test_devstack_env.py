"""make run's settings: the caller's GATEWAY_* variables win over the stack's own, a simulator the caller points
elsewhere is not started, and the settings written to .data/stack.env read back as the processes see them."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.settings import from_env, stack_env_text, with_stack_env
from deploy.devstack import Stack


def stack(tmp_path: Path, callers_env: bool) -> Stack:
    return Stack(tmp_path, redis_port=1, pg_port=2, sim_port=3, port=4, national_port=5, callers_env=callers_env)


def test_the_callers_variables_win_and_their_simulator_is_not_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GATEWAY_EXPORT_URL", "https://platform.example")
    monkeypatch.setenv("GATEWAY_NATIONAL_SIM_ERROR_RATE", "0.33")
    made = stack(tmp_path, callers_env=True)
    assert made.env["GATEWAY_EXPORT_URL"] == "https://platform.example"
    assert made.env["GATEWAY_NATIONAL_SIM_ERROR_RATE"] == "0.33"
    assert made.env["GATEWAY_VERIFY_URL"] == "http://127.0.0.1:3"
    assert not made.runs("GATEWAY_EXPORT_URL") and made.runs("GATEWAY_VERIFY_URL")
    ignored = stack(tmp_path, callers_env=False)  # the tests' stacks: their own settings only
    assert ignored.env["GATEWAY_EXPORT_URL"] == "http://127.0.0.1:5" and ignored.runs("GATEWAY_EXPORT_URL")


def test_the_stack_env_file_reads_back_as_the_stacks_settings(tmp_path: Path) -> None:
    made = stack(tmp_path, callers_env=False)
    (tmp_path / ".data").mkdir()
    (tmp_path / ".data" / "stack.env").write_text(stack_env_text(made.env))
    read = from_env(with_stack_env({}, tmp_path))
    assert read == from_env({k: v for k, v in made.env.items() if k.startswith("GATEWAY_")})
    assert read.stores.redis_url == "redis://127.0.0.1:1/0" and read.export.url == "http://127.0.0.1:5"
