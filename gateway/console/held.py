"""The held queue: invoices a risk rule held, oldest first, filtered by rule and channel; a reviewer releases or
rejects several at once with one note. Each is decided in its own transaction by gateway/review.py's
``settle``, as ``POST /v1/admin/held/{key}`` decides: its review, its history, its feed entry or figures, and its
audit row. One that someone decided meanwhile is left as it is and counted as skipped."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlencode

from starlette.responses import Response

from gateway import codes, metrics, review
from gateway.console.page import Visit, page, redirect
from gateway.errors import Problem

SHOWN = 200  # rows of the queue on one page: a reviewer works from the oldest
MAX_SELECTED = 500

LIST = """
SELECT key, channel, reason, seller_tax_id, amount_fen, accepted_at FROM invoices
WHERE held AND ($1::text IS NULL OR reason = $1) AND ($2::text IS NULL OR channel = $2)
ORDER BY accepted_at, key LIMIT $3
"""
# The queue's facets: held invoices are few (a review queue), and both queries read the partial index
# invoices_held (migrations 005, 093), never the whole table.
FACETS = "SELECT reason, channel, count(*) AS n FROM invoices WHERE held GROUP BY reason, channel"


@page("held")
async def queue(visit: Visit) -> Response:
    """The held invoices, ``?rule=`` and ``?channel=`` to filter."""
    params = visit.request.query_params
    async with visit.deps.pool.acquire() as conn:
        facets = await conn.fetch(FACETS)
        rules = sorted({r["reason"] for r in facets})
        channels = sorted({r["channel"] for r in facets})
        rule = params.get("rule") if params.get("rule") in rules else None
        channel = params.get("channel") if params.get("channel") in channels else None
        rows = await conn.fetch(LIST, rule, channel, SHOWN)
    total = sum(r["n"] for r in facets if rule in (None, r["reason"]) and channel in (None, r["channel"]))
    done = {k: int(params.get(k, "0")) for k in ("released", "rejected", "skipped") if params.get(k, "").isdigit()}
    return visit.render(
        "held.html",
        rows=rows,
        rules=rules,
        channels=channels,
        rule=rule,
        channel=channel,
        total=total,
        shown=SHOWN,
        done=done,
        error=params.get("error", ""),
    )


@page("held.decide")
async def decide(visit: Visit) -> Response:
    """Release or reject the selected invoices (``key``, several), with one ``note``."""
    form = visit.form
    keys = list(dict.fromkeys(form.all("key")))[:MAX_SELECTED]
    decision: Literal["release", "reject"] = "release" if form.get("decision") == "release" else "reject"
    back = {k: form.get(k) for k in ("rule", "channel") if form.get(k)}
    if form.get("decision") not in ("release", "reject"):
        raise Problem(codes.BAD_PARAMETER, "decision: release or reject")
    if not keys:
        return redirect(f"/console/held?{urlencode({**back, 'error': 'none_selected'})}")
    try:
        chosen = review.Decision(decision, review.clean_note(form.get("note")))
    except Problem:
        return redirect(f"/console/held?{urlencode({**back, 'error': 'invalid_note'})}")
    d, done = visit.deps, {"released": 0, "rejected": 0, "skipped": 0}
    for key in keys:
        try:
            await review.settle(d.pool, d.campaign, d.caps, key, chosen, visit.actor)
        except Problem as exc:
            if exc.code not in (codes.NOT_HELD, codes.UNKNOWN_INVOICE):
                raise
            done["skipped"] += 1
            continue
        done["released" if decision == "release" else "rejected"] += 1
        metrics.CONSOLE_ACTIONS.labels(decision).inc()
    return redirect(f"/console/held?{urlencode({**back, **done})}")
