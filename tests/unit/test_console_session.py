"""Console sessions and forms without a store: the cookie's signature, each form's token bound to its session,
the cookie's flags (Secure only over TLS), where a login may lead, and what a case's text may not hold."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from core.settings import ConfigError, from_env
from gateway.app import check
from gateway.console import forms, session
from gateway.console.login import safe_next

SECRET = "a-console-secret-for-tests"


def test_a_cookie_is_accepted_only_with_its_signature() -> None:
    value = session.cookie_value(SECRET, "abc")
    assert session.session_id(SECRET, value) == "abc"
    assert session.session_id("another-secret-entirely", value) is None
    assert session.session_id(SECRET, "abc." + "0" * 64) is None
    assert session.session_id(SECRET, "abc") is None and session.session_id(SECRET, None) is None


def test_a_form_token_belongs_to_one_session() -> None:
    token = session.form_token(SECRET, "session-1")
    assert session.token_ok(SECRET, "session-1", token)
    assert not session.token_ok(SECRET, "session-2", token)
    assert not session.token_ok(SECRET, "", session.form_token(SECRET, ""))
    assert token != session.sign(SECRET, "session", "session-1")  # a cookie's signature is no token


def _cookie(scheme: str) -> str:
    request = Request({"type": "http", "scheme": scheme, "server": ("gw", 443), "path": "/", "headers": []})
    response = Response()
    session.set_cookie(response, request, session.SESSION_COOKIE, "v")
    return response.headers["set-cookie"]


def test_cookies_are_httponly_strict_and_secure_over_tls_only() -> None:
    plain, tls = _cookie("http"), _cookie("https")
    for cookie in (plain, tls):
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie
    assert "Secure" not in plain and "Secure" in tls


def test_after_login_only_a_console_page_of_this_gateway() -> None:
    assert safe_next("/console/cases/3") == "/console/cases/3"
    for bad in (None, "", "https://evil.example/console/", "//evil.example/console/", "/console/..\\x", "/v1/feed"):
        assert safe_next(bad) == "/console/today"


def test_case_text_may_not_hold_an_id_or_phone_number() -> None:
    assert forms.personal_data("ID 11010519491231002X, please check") == "id_number"
    assert forms.personal_data("call 13912345678") == "mobile"
    assert forms.personal_data("invoice 26341000000000000123 from seller 91340104MA1W0556X9") is None
    assert forms.personal_data("order 110105194912310021 is not an ID: its check digit is wrong") is None


def test_the_gateway_refuses_a_console_secret_too_short_to_sign_with() -> None:
    env = {
        "GATEWAY_PERSON_SECRET": "p" * 16,
        "GATEWAY_RECEIPT_SIGNING_KEY": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "GATEWAY_CONSOLE_SECRET": "short",
    }
    try:
        check(from_env(env))
    except ConfigError as exc:
        assert exc.source == "GATEWAY_CONSOLE_SECRET"
    else:
        raise AssertionError("a short console secret was accepted")
    check(from_env({**env, "GATEWAY_CONSOLE_SECRET": ""}))  # none: the console is off
