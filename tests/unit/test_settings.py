from pathlib import Path

import pytest

from core.settings import Settings, SettingsError, from_env, stack_env_text, with_stack_env


def test_defaults_without_environment() -> None:
    assert from_env({}) == Settings()


def test_values_are_converted_to_their_types() -> None:
    settings = from_env({"GATEWAY_MAX_INVOICES": "100", "GATEWAY_CLIENTS_REFRESH_S": "2.5", "PATH": "/bin"})
    assert settings.api.max_invoices == 100
    assert settings.api.clients_refresh_s == 2.5


def test_unknown_setting_is_an_error_not_ignored() -> None:
    with pytest.raises(SettingsError, match="GATEWAY_MAX_INVOICE"):
        from_env({"GATEWAY_MAX_INVOICE": "100"})


def test_wrong_type_is_an_error() -> None:
    with pytest.raises(SettingsError):
        from_env({"GATEWAY_MAX_INVOICES": "many"})


def test_more_invoices_per_request_than_the_scripts_can_name_is_refused() -> None:
    assert from_env({"GATEWAY_MAX_INVOICES": "3900"}).api.max_invoices == 3_900
    with pytest.raises(SettingsError, match="GATEWAY_MAX_INVOICES"):
        from_env({"GATEWAY_MAX_INVOICES": "5000"})


def test_the_dev_stacks_settings_are_read_when_the_environment_has_none(tmp_path: Path) -> None:
    (tmp_path / ".data").mkdir()
    stack = {"GATEWAY_REDIS_URL": "redis://127.0.0.1:1/0", "GATEWAY_REPORTS_DIR": "/a folder/with 'quotes'"}
    (tmp_path / ".data" / "stack.env").write_text(stack_env_text({**stack, "PATH": "/bin"}))
    read = with_stack_env({"PATH": "/usr/bin"}, tmp_path)
    assert read == {"PATH": "/usr/bin", **stack}
    assert from_env(read).reports.dir == "/a folder/with 'quotes'"
    # Any GATEWAY_* variable of its own and the file is not read at all; no file, nothing read.
    assert with_stack_env({"GATEWAY_LOG_LEVEL": "debug"}, tmp_path) == {"GATEWAY_LOG_LEVEL": "debug"}
    assert with_stack_env({}, tmp_path / "elsewhere") == {}


def test_a_broken_stack_env_line_is_named(tmp_path: Path) -> None:
    (tmp_path / ".data").mkdir()
    (tmp_path / ".data" / "stack.env").write_text("# comment\nGATEWAY_LOG_LEVEL=info\nnonsense\n")
    with pytest.raises(SettingsError, match="line 3"):
        with_stack_env({}, tmp_path)
