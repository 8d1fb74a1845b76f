import pytest

from core.settings import Settings, SettingsError, from_env


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
