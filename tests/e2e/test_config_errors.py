"""Every command, run as an operator runs it, turns a configuration error into one line and exit status 2:
``error: <file or variable>: <where>: <what is wrong>``, never a traceback. The gateway's gunicorn says the
same line in its master (it may log its own lines around it); the dev stack says its parts' line."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest

from deploy.devstack import Stack, StackError, free_port

ROOT = Path(__file__).resolve().parent.parent.parent
BIN = Path(sys.executable).parent
GOOD = (ROOT / "deploy" / "campaigns" / "hefei-2026.toml").read_text()

# (name, changes to the good campaign or None for a missing file, extra variables, source, where and what)
CASES = {
    "bad-date": ([("starts = 2026-01-01", "starts = 2026-13-01")], {}, "starts: 2026-13-01 is not a date"),
    "count-as-string": ([("person_daily = 2", 'person_daily = "2"')], {}, "caps.person_daily: Expected `int`"),
    "missing-file": (None, {}, "cannot read the campaign file: No such file or directory"),
    "unknown-variable": ([], {"GATEWAY_NOPE": "1"}, "unknown setting"),
    "wrong-typed-variable": ([], {"GATEWAY_WORKER_BATCH": "many"}, "not a whole number"),
    "daily-over-monthly": (
        [("person_daily = 2", "person_daily = 30")],
        {},
        "caps.person_daily: 30 a day is more than person_monthly's 20",
    ),
    "ends-before-starts": (
        [("ends = 2026-12-31", "ends = 2025-12-31")],
        {},
        "ends: the campaign ends (2025-12-31) before it starts (2026-01-01)",
    ),
}
COMMANDS = {
    "gateway migrate": ["gateway", "migrate"],
    "gateway add-client": ["gateway", "add-client", "someone", "someone-secret", "channel"],
    "gateway-worker run": ["gateway-worker", "run"],
    "dedup stats": ["dedup", "stats"],
}


def _case(tmp_path: Path, name: str) -> tuple[dict[str, str], str, str]:
    """The environment of a case, the source its line must name, and what the line must say."""
    changes, variables, says = CASES[name]
    campaign = tmp_path / "campaign.toml"
    if changes is not None:
        text = GOOD
        for old, new in changes:
            assert old in text
            text = text.replace(old, new, 1)
        campaign.write_text(text)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    # Stores nobody listens on: each error must come before any is opened.
    env.update(
        GATEWAY_CAMPAIGN_FILE=str(campaign),
        GATEWAY_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",
        GATEWAY_DATABASE_URL=f"postgresql://gateway:never-shown@127.0.0.1:{free_port()}/gateway",
        GATEWAY_RECEIPT_SIGNING_KEY=base64.b64encode(bytes(32)).decode(),
        GATEWAY_RECEIPT_SECRET="a-receipt-secret-never-shown",
        GATEWAY_PERSON_SECRET="a-person-secret-never-shown",
        **variables,
    )
    source = next(iter(variables)) if variables else str(campaign)
    return env, source, says


def _assert_one_line(stderr: str, source: str, says: str) -> None:
    assert "Traceback" not in stderr, stderr
    assert "never-shown" not in stderr, stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith(f"error: {source}: ") and says in lines[0], stderr


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("command", COMMANDS)
def test_a_command_says_one_line_and_exits_2(tmp_path: Path, command: str, case: str) -> None:
    env, source, says = _case(tmp_path, case)
    argv = COMMANDS[command]
    done = subprocess.run(
        [str(BIN / argv[0]), *argv[1:]], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, done.stdout + done.stderr
    _assert_one_line(done.stderr, source, says)


@pytest.mark.parametrize("case", [name for name, (_, variables, _) in CASES.items() if not variables])
def test_check_campaign_says_one_line_and_exits_2(tmp_path: Path, case: str) -> None:
    env, source, says = _case(tmp_path, case)
    done = subprocess.run(
        [str(BIN / "gateway"), "check-campaign", source], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 2, done.stdout + done.stderr
    _assert_one_line(done.stderr, source, says)


@pytest.mark.parametrize("case", CASES)
def test_gunicorn_stops_in_its_master_with_the_line(tmp_path: Path, case: str) -> None:
    env, source, says = _case(tmp_path, case)
    argv = [str(BIN / "gunicorn"), "-c", str(ROOT / "deploy" / "gunicorn.conf.py"), "-b", "127.0.0.1:0", "-w", "1"]
    done = subprocess.run(argv, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and "never-shown" not in done.stderr, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and errors[0].startswith(f"error: {source}: ") and says in errors[0], done.stderr
    assert "Booting worker" not in done.stderr  # refused in the master, before any worker


def test_the_dev_stack_says_the_line_of_a_bad_campaign_before_starting_anything(tmp_path: Path) -> None:
    env, source, says = _case(tmp_path, "count-as-string")
    data = tmp_path / "data"
    argv = [sys.executable, "-m", "deploy.devstack", "--campaign", source, "--data", str(data)]
    for option in ("--port", "--redis-port", "--pg-port", "--sim-port"):
        argv += [option, str(free_port())]
    done = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    _assert_one_line(done.stderr, source, says)
    assert not data.exists()


def test_a_part_of_the_dev_stack_refusing_its_configuration_is_its_line_not_a_traceback(tmp_path: Path) -> None:
    port = free_port()
    stack = Stack(
        tmp_path / "data",
        redis_port=port,
        pg_port=port,
        sim_port=port,
        port=port,
        extra_env={"GATEWAY_WORKER_BATCH": "many"},
    )
    with pytest.raises(StackError) as failed:
        stack.prepare_database()  # runs `gateway migrate`, which refuses the variable
    assert failed.value.status == 2
    assert str(failed.value) == "error: GATEWAY_WORKER_BATCH: not a whole number"


@pytest.mark.parametrize("command", ["export", "national-simulator"])
def test_the_export_and_its_simulator_refuse_to_start_without_the_platforms_key(tmp_path: Path, command: str) -> None:
    env, _, _ = _case(tmp_path, "unknown-variable")
    env.pop("GATEWAY_NOPE")
    env["GATEWAY_CAMPAIGN_FILE"] = str(ROOT / "deploy" / "campaigns" / "hefei-2026.toml")
    done = subprocess.run(
        [str(BIN / "gateway-worker"), command], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, done.stdout + done.stderr
    _assert_one_line(done.stderr, "GATEWAY_EXPORT_SECRET", "16 characters or more")
