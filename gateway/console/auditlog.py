"""The audit log, newest first, filtered by who and by action, paged by id (gateway/audit.py writes it)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from gateway import audit
from gateway.console.page import Visit, page

SHOWN = 100


def query(actor: str | None, action: str | None, before: int | None) -> tuple[str, list[Any]]:
    """The page's query: each filter a condition of its own, so each can use its index (actor, id), (action, id)."""
    conditions, args = [], []
    for condition, value in (("actor =", actor), ("action =", action), ("id <", before)):
        if value is not None:
            args.append(value)
            conditions.append(f"{condition} ${len(args)}")
    where = " AND ".join(conditions) or "true"
    sql = (
        "SELECT id, at, actor, role, via, source, action, subject, detail FROM audit_log"
        f" WHERE {where} ORDER BY id DESC LIMIT {SHOWN}"
    )
    return sql, args


@page("audit")
async def audit_log(visit: Visit) -> Response:
    """``?actor=``, ``?action=``, ``?before=ID`` (the next page)."""
    params = visit.request.query_params
    actor = params.get("actor") or None
    action = params.get("action") if params.get("action") in audit.ACTIONS else None
    before = int(params["before"]) if params.get("before", "").isdigit() else None
    sql, args = query(actor, action, before)
    rows = [{**dict(r), "detail": orjson.loads(r["detail"])} for r in await visit.deps.pool.fetch(sql, *args)]
    next_page = rows[-1]["id"] if len(rows) == SHOWN else None
    return visit.render(
        "audit.html", rows=rows, actor=actor or "", action=action, actions=audit.ACTIONS, next_page=next_page
    )
