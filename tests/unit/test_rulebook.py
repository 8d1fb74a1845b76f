"""The "Validation rules" page is the code's own tables, and every reason code the code writes is in them."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

from core import outbox, reasons
from gateway import rulebook, rules
from ratelimit.caps import REFUSALS

ROOT = Path(__file__).resolve().parent.parent.parent
SQL_REASON = re.compile(r"'([a-z]+(?:_[a-z]+)+)'")  # a snake_case literal in a query: a reason


def test_docs_rules_md_is_the_generated_page() -> None:
    assert (ROOT / "docs" / "rules.md").read_text() == rulebook.page(), (
        "run: python -m gateway.rulebook > docs/rules.md"
    )


def test_every_rule_has_a_documented_reason_and_an_example() -> None:
    for rule in rules.TABLE:
        assert re.fullmatch(r"[a-z]+(_[a-z]+)+", rule.reason) and rule.example and rule.rule, rule
    assert "issue_date_in_future" in rules.REASONS and "unknown_field" in rules.REASONS


def _judge_reasons() -> set[str]:
    """The reasons workers/judge.py returns: string constants returned, or given to Judgement(status, reason)."""
    tree = ast.parse((ROOT / "workers" / "judge.py").read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Return) and node.value is not None:
            value = node.value  # a reason returned as it is, or chosen by a conditional expression
            for part in (value.body, value.orelse) if isinstance(value, ast.IfExp) else (value,):
                if isinstance(part, ast.Constant) and isinstance(part.value, str):
                    found.add(part.value)
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "Judgement" and len(node.args) == 2:
            reason = node.args[1]
            if isinstance(reason, ast.Constant) and isinstance(reason.value, str):
                found.add(reason.value)
    return found


def _reverify_reasons() -> set[str]:
    """The reasons workers/reverify.py withdraws invoices with: Withdrawal(key, status, reason)."""
    tree = ast.parse((ROOT / "workers" / "reverify.py").read_text())
    return {
        node.args[2].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "Withdrawal" and len(node.args) == 3
        if isinstance(node.args[2], ast.Constant) and isinstance(node.args[2].value, str)
    }


def test_every_reason_the_code_writes_is_documented() -> None:
    written = _judge_reasons() | _reverify_reasons() | set(REFUSALS)
    # The members of an invoice's outbox record, which the sink builds in SQL (core/outbox.py ``facts``), are
    # snake_case literals there too, not reasons.
    members = set(inspect.signature(outbox.facts).parameters)
    for module in ("workers/risk.py", "workers/sink.py", "gateway/review.py", "gateway/reversals.py"):
        written |= set(SQL_REASON.findall((ROOT / module).read_text())) - members
    written.add("upload_far_from_city")  # workers/risk.py's rule decided in Python
    assert "amount_mismatch" in written and "blacklisted_person" in written and "rejected_in_review" in written
    undocumented = written - set(reasons.CODES) - set(rules.REASONS)
    assert not undocumented, f"reason codes missing from core/reasons.py: {sorted(undocumented)}"
    unused = set(reasons.CODES) - written
    assert not unused, f"documented reason codes nothing writes: {sorted(unused)}"
