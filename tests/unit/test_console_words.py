"""The console speaks both languages everywhere: every key a template or a page uses has its Chinese and its
English, every reason code an invoice can carry has a label, and so does every audit action and role."""

from __future__ import annotations

import re
from pathlib import Path

from core import reasons
from gateway import audit, rules
from gateway.console import i18n, reports, roles, today
from gateway.console.i18n import LABELS, TEXT, Words

CONSOLE = Path(__file__).resolve().parents[2] / "gateway" / "console"
USED = re.compile(r"""\b(?:t|words)\(\s*["']([a-z_.]+)["']\s*\)""")


def used_keys() -> set[str]:
    """The literal keys the templates (``t("...")``) and the modules (``words("...")``) ask for."""
    found: set[str] = set()
    for path in [*CONSOLE.glob("templates/*.html"), *CONSOLE.glob("*.py")]:
        if path.name != "i18n.py":
            found |= set(USED.findall(path.read_text()))
    return found


def test_every_key_in_use_has_both_languages() -> None:
    used = used_keys()
    assert len(used) > 80
    assert used - set(TEXT) == set()
    assert all(zh and en and zh != en for zh, en in TEXT.values() if not zh.isascii())


def test_keys_made_of_parts_exist_too() -> None:
    for action, _ in roles.NAV:
        assert f"nav.{action}" in TEXT
    for state in ("open", "waiting", "closed"):
        assert f"state.{state}" in TEXT
    for kind in ("invoice", "question"):
        assert f"cases.kind.{kind}" in TEXT
    figures = {*today.CARDS, *today.AMOUNTS, *today.MIX, *reports.SHOWN, *reports.SHOWN_AFTER}
    assert {f"figure.{name}" for name in figures} - set(TEXT) == set()
    assert {"col.channel", "col.industry"} <= set(TEXT)


def test_every_reason_action_and_role_has_a_label_in_both_languages() -> None:
    assert set(rules.REASONS) | set(reasons.CODES) <= set(LABELS["reason"])
    assert set(audit.ACTIONS) == set(LABELS["action"])
    assert set(roles.ROLES) == set(LABELS["role"])
    assert set(reasons.STATUSES) == set(LABELS["status"])
    for kind in LABELS.values():
        assert all(zh and en for zh, en in kind.values())


def test_chinese_first_english_when_asked_and_codes_shown_as_they_are() -> None:
    zh, en = Words("zh"), Words("en")
    assert zh("nav.today") == "今日" and en("nav.today") == "Today"
    assert Words("fr").lang == "zh" and zh.other == "en" and en.other == "zh"
    assert zh.reason("upload_far_from_city") == "上传位置远离活动城市"
    assert zh.reason("a_code_added_later") == "a_code_added_later" and zh.reason(None) == ""
    assert en.problem("bad_parameter", "from: a date") == "A parameter is wrong: from: a date"
    assert en.problem("some_other_code", "as the API says") == "as the API says"
    assert i18n.COOKIE == "console_lang"
