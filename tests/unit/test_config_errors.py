"""Configuration errors name the file or variable, the place and the problem (``error: <source>: <where>:
<what>``), found before anything runs: a campaign's syntax, types, ranges and contradicting rules, and the
environment's unknown or wrong-typed variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from core import campaign as campaigns
from core.settings import ConfigError, SettingsError, from_env
from gateway.cli import check_campaign

ROOT = Path(__file__).resolve().parent.parent.parent
GOOD = (ROOT / "deploy" / "campaigns" / "hefei-2026.toml").read_text()


def variant(tmp_path: Path, *changes: tuple[str, str]) -> Path:
    """The dev stack's campaign with some lines changed, written to a file of its own."""
    text = GOOD
    for old, new in changes:
        assert old in text, old
        text = text.replace(old, new, 1)
    path = tmp_path / "campaign.toml"
    path.write_text(text)
    return path


def problems(path: Path) -> list[tuple[str, str]]:
    _, found = campaigns.read(path)
    assert found, "no problem found"
    return found


def test_the_dev_stack_campaign_has_no_problem(capsys: pytest.CaptureFixture[str]) -> None:
    assert campaigns.read(ROOT / "deploy" / "campaigns" / "hefei-2026.toml")[1] == []
    assert check_campaign(str(ROOT / "deploy" / "campaigns" / "hefei-2026.toml")) == 0
    assert "no problem found" in capsys.readouterr().out


def test_a_date_that_does_not_exist_is_named_by_its_key_and_line(tmp_path: Path) -> None:
    path = variant(tmp_path, ("starts = 2026-01-01", "starts = 2026-13-01"))
    line = GOOD.splitlines().index("starts = 2026-01-01") + 1
    assert problems(path) == [("starts", f"2026-13-01 is not a date (month must be in 1..12; line {line}, column 10)")]
    with pytest.raises(ConfigError) as refused:
        campaigns.load(path)
    assert refused.value.line() == (
        f"error: {path}: starts: 2026-13-01 is not a date (month must be in 1..12; line {line}, column 10)"
    )


def test_a_date_in_a_table_gets_the_table_in_its_path(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('id = "x"\n\n[caps]\nfrom = 2026-02-30\n')
    assert problems(path) == [
        ("caps.from", "2026-02-30 is not a date (day is out of range for month; line 4, column 8)")
    ]


def test_a_count_written_as_a_string_names_its_toml_path(tmp_path: Path) -> None:
    path = variant(tmp_path, ("person_daily = 2", 'person_daily = "2"'))
    [(where, what)] = problems(path)
    assert where == "caps.person_daily"
    assert what == "Expected `int`, got `str` (a number is written without quotes)"


def test_a_value_out_of_range(tmp_path: Path) -> None:
    path = variant(tmp_path, ("shards = 1", "shards = 100"))
    assert problems(path) == [("dedup.shards", "Expected `int` <= 99")]


def test_a_missing_file(tmp_path: Path) -> None:
    assert problems(tmp_path / "nope.toml") == [("", "cannot read the campaign file: No such file or directory")]
    with pytest.raises(ConfigError) as refused:
        campaigns.load(tmp_path / "nope.toml")
    assert (
        refused.value.line()
        == f"error: {tmp_path / 'nope.toml'}: cannot read the campaign file: No such file or directory"
    )


def test_a_file_that_is_not_utf8_or_not_toml(tmp_path: Path) -> None:
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b'id = "x"\nname = "\xff"\n')
    assert problems(binary) == [("line 2", "not UTF-8 text (a TOML file is UTF-8)")]
    broken = tmp_path / "broken.toml"
    broken.write_text('id = "x"\nname = \n')
    [(where, what)] = problems(broken)
    assert where == "line 2, column 8" and what.startswith("not TOML: ")


def test_missing_and_unknown_fields_are_named_where_they_belong(tmp_path: Path) -> None:
    assert problems(variant(tmp_path, ("person_daily = 2\n", ""))) == [
        ("caps.person_daily", "missing (every campaign sets it)")
    ]
    assert problems(variant(tmp_path, ("person_daily = 2", "persn_daily = 2"))) == [
        ("caps.persn_daily", "unknown field (misspelt, or in the wrong table?)")
    ]


def test_a_wrong_value_under_a_key_of_its_own_choosing_names_that_key(tmp_path: Path) -> None:
    weights = variant(tmp_path, ("demo-channel-2 = 1.0 }", 'demo-channel-2 = "heavy" }'))
    assert problems(weights) == [
        ("shedding.weights.demo-channel-2", "Expected `float`, got `str` (a number is written without quotes)")
    ]
    override = variant(
        tmp_path,
        ("# [limits.channels.demo-channel-2]", "[limits.channels.demo-channel-2]"),
        ("# channel_requests_per_s = 500", 'channel_requests_per_s = "500"'),
    )
    [(where, _)] = problems(override)
    assert where == "limits.channels.demo-channel-2.channel_requests_per_s"


def test_every_contradiction_is_reported_at_once(tmp_path: Path) -> None:
    path = variant(tmp_path, ("ends = 2026-12-31", "ends = 2025-12-31"), ("person_daily = 2", "person_daily = 30"))
    assert problems(path) == [
        ("ends", "the campaign ends (2025-12-31) before it starts (2026-01-01)"),
        ("caps.person_daily", "30 a day is more than person_monthly's 20"),
    ]


def test_check_campaign_prints_one_line_per_problem_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = variant(
        tmp_path,
        ("ends = 2026-12-31", "ends = 2025-12-31"),
        ("seller_person_monthly = 3", "seller_person_monthly = 21"),
    )
    assert check_campaign(str(path)) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"error: {path}: ends: the campaign ends (2025-12-31) before it starts (2026-01-01)",
        f"error: {path}: caps.seller_person_monthly: 21 from one seller is more than person_monthly's 20 from all",
    ]


@pytest.mark.parametrize(
    ("environ", "line"),
    [
        (
            {"GATEWAY_NOPE": "1"},
            "error: GATEWAY_NOPE: unknown setting (the README's configuration table lists them all)",
        ),
        (
            {"GATEWAY_WORKER_BATCHES": "1"},
            "error: GATEWAY_WORKER_BATCHES: unknown setting (did you mean GATEWAY_WORKER_BATCH?)",
        ),
        ({"GATEWAY_WORKER_BATCH": "many"}, "error: GATEWAY_WORKER_BATCH: not a whole number"),
        ({"GATEWAY_SHED_HIGH_AGE_S": "soon"}, "error: GATEWAY_SHED_HIGH_AGE_S: not a number"),
        ({"GATEWAY_MAX_INVOICES": "5000"}, "error: GATEWAY_MAX_INVOICES: must be <= 3900"),
        ({"GATEWAY_LOG_LEVEL": "loud"}, "error: GATEWAY_LOG_LEVEL: not one of debug, info, warning, error, critical"),
        (
            {"GATEWAY_VERIFY_RECHECK_S": "2,later"},
            "error: GATEWAY_VERIFY_RECHECK_S: not a comma-separated list of delays in seconds (2,10,30)",
        ),
        (
            {"GATEWAY_DATABASE_URL": "mysql://gateway:hunter2@db/gateway"},
            "error: GATEWAY_DATABASE_URL: not a URL of scheme postgresql:// or postgres://",
        ),
        (
            {"GATEWAY_REDIS_URL": "127.0.0.1:6379"},
            "error: GATEWAY_REDIS_URL: not a URL of scheme redis:// or rediss:// or unix://",
        ),
    ],
)
def test_a_wrong_variable_is_one_line_naming_it_and_never_its_value(environ: dict[str, str], line: str) -> None:
    with pytest.raises(SettingsError) as refused:
        from_env({"PATH": "/bin", **environ})
    assert refused.value.line() == line
    assert "hunter2" not in line


def test_good_variables_pass() -> None:
    settings = from_env(
        {"GATEWAY_LOG_LEVEL": "DEBUG", "GATEWAY_VERIFY_RECHECK_S": "0.5, 1", "GATEWAY_REDIS_URL": "unix:///run/r.sock"}
    )
    assert settings.verify.recheck_delays_s() == [0.5, 1.0]
