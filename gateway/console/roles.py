"""Which role may see and do what in the console: one table that every page checks (gateway/console/page.py), the
navigation shows, and docs/console.md prints. tests/integration/test_console_roles.py tries every route with
every role against a table of its own.

- reviewer: decides held invoices; looks invoices up; reads cases.
- support (客服): answers consumers: looks invoices up, keeps the cases.
- analyst: reads the indicators, the reports and the channels.
- auditor: reads everything, changes nothing.
- admin: everything.
"""

from __future__ import annotations

ROLES = ("reviewer", "support", "analyst", "auditor", "admin")
EVERYONE = frozenset(ROLES)

ACCESS: dict[str, frozenset[str]] = {
    "today": EVERYONE,
    "held": frozenset({"reviewer", "auditor", "admin"}),
    "held.decide": frozenset({"reviewer", "admin"}),
    "lookup": frozenset({"reviewer", "support", "auditor", "admin"}),
    "cases": frozenset({"reviewer", "support", "auditor", "admin"}),
    "cases.change": frozenset({"support", "admin"}),
    "reports": frozenset({"analyst", "auditor", "admin"}),
    "channels": frozenset({"analyst", "auditor", "admin"}),
    "audit": frozenset({"auditor", "admin"}),
    "session": EVERYONE,  # logging out, a page that does not exist
}

# The navigation: each page and the action that shows it.
NAV = (
    ("today", "/console/today"),
    ("held", "/console/held"),
    ("lookup", "/console/invoices"),
    ("cases", "/console/cases"),
    ("reports", "/console/reports"),
    ("channels", "/console/channels"),
    ("audit", "/console/audit"),
)


def may(role: str, action: str) -> bool:
    return role in ACCESS[action]
