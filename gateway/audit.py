"""The audit log: who did what, when and from where, one row per action, written in the transaction of the action
itself, so that an action and its row commit together or not at all. The table refuses every UPDATE, DELETE
and TRUNCATE (migration 050): rows are only ever added.

Actions come from the console (a member of staff), the admin API (an admin client deciding a held invoice) and
the ``gateway`` command (staff accounts). ``detail`` holds what the action was about (a decision and its note,
a case's change, an export's days); never an ID number, a name or a location.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec
import orjson
from starlette.requests import Request

from core.rollup import Conn

Via = Literal["console", "api", "cli"]
# Every action the log holds, in the order the console's filter lists them.
ACTIONS = (
    *("login", "login_failed", "lockout", "logout"),
    *("release", "reject", "lookup", "case_open", "case_note", "case_change", "export"),
    *("staff_saved", "staff_disabled"),
)


class Actor(msgspec.Struct, frozen=True):
    """Who acts: a name (a member of staff, an API client, the OS user of a command), the role they act in,
    through what, and from where (the caller's address, or the host of a command)."""

    name: str
    role: str
    via: Via
    source: str


INSERT = """
INSERT INTO audit_log (actor, role, via, source, action, subject, detail) VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)
"""


async def record(
    conn: Conn, actor: Actor, action: str, subject: str = "", detail: dict[str, Any] | None = None
) -> None:
    """Add one row (in the caller's transaction, when it has one)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    body = orjson.dumps(detail or {}).decode()
    await conn.execute(INSERT, actor.name, actor.role, actor.via, actor.source, action, subject, body)


def source_of(request: Request) -> str:
    """Where a request came from: the peer's address (behind a proxy trusted with ``--forwarded-allow-ips``,
    the one it forwarded for)."""
    return request.client.host if request.client else ""
