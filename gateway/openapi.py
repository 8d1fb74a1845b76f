"""The OpenAPI 3.1 document of the gateway, served at ``/openapi.json`` and read at ``/docs`` (Redoc, served by
the gateway from the openapi-ui-bundles package: nothing comes from a CDN). docs/openapi.json is a copy that
tests keep equal to what is served:

    .venv/bin/python -m gateway.openapi > docs/openapi.json

Schemas are generated from the msgspec models (gateway/model.py, gateway/schemas.py); the error catalogue from
the table the routes raise from (gateway/codes.py); reason codes from gateway/rules.py and core/reasons.py.
"""

from __future__ import annotations

import sys
from importlib import metadata
from typing import Any

import msgspec
import orjson

from core import report
from gateway import codes, model, schemas

REF = "#/components/schemas/{name}"
SIGNED: list[dict[str, list[str]]] = [{"clientId": [], "timestamp": [], "nonce": [], "signature": []}]
AUTH_HEADERS = {
    "clientId": ("X-Client-Id", "the client id"),
    "timestamp": ("X-Timestamp", "Unix time in whole seconds, within 300 s of the gateway's clock"),
    "nonce": ("X-Nonce", "16 to 64 characters of [A-Za-z0-9_-], fresh for each request (600 s)"),
    "signature": (
        "X-Signature",
        "lowercase hex HMAC-SHA256(secret, canonical string): method, path with its raw query, X-Timestamp,"
        " X-Nonce, hex SHA-256 of the body, joined by \\n (docs/hashing.md)",
    ),
}
HEADER_PATTERNS = {
    "clientId": "^.{1,64}$",
    "timestamp": "^[0-9]{1,12}$",
    "nonce": "^[A-Za-z0-9_-]{16,64}$",
    "signature": "^[0-9a-f]{64}$",
}
MODELS: list[Any] = [
    model.Upload,
    schemas.UploadAnswer,
    schemas.InvoiceStatus,
    schemas.Events,
    schemas.Pushed,
    schemas.Listing,
    schemas.Reversals,
    schemas.ReversalsAnswer,
    schemas.Feed,
    schemas.Keys,
    schemas.Presented,
    schemas.Verdict,
    schemas.Held,
    schemas.Decision,
    schemas.Decided,
    schemas.ReversalsBySeller,
    schemas.DailyReport,
    schemas.Reconciliation,
    schemas.PrizeList,
    schemas.PaidIn,
    schemas.PaidAnswer,
    schemas.DrawCommit,
    schemas.DrawRecord,
    schemas.AwardsIn,
    schemas.AwardsAnswer,
    schemas.PrizeLedger,
    schemas.Alive,
    schemas.Readiness,
    schemas.Problem,
]

DESCRIPTION = """The front door of a city's 2026 prize-invoice (有奖发票) lottery platform: channels upload their
consumers' invoices, follow what becomes of them, and prove acceptance with receipts; the draw service reads the
sealed feed; admins review held invoices; the city's auditors (role `auditor`, read only; admins too) read the
daily indicators and reconcile each day (docs/api.md).

**Signing.** Every `/v1` request carries `X-Client-Id`, `X-Timestamp`, `X-Nonce` and
`X-Signature` (the security scheme below, and each operation's header parameters). The signature is the
lowercase hex HMAC-SHA256, with the client's secret, of five lines joined by `\\n`: the method in upper case; the
path with its raw query string exactly as sent (no `?` when there is no query); the timestamp; the nonce; the
lowercase hex SHA-256 of the body bytes (of the empty string without a body). Test vectors:
`docs/vectors/signing.json`.

**Answers.** Every answer carries `X-Request-Id`; every answer to an authenticated channel carries
`RateLimit-Policy` and `RateLimit` (draft-ietf-httpapi-ratelimit-headers): its request quota and what is left.
Errors are `application/problem+json` (RFC 9457) with a `code`: the catalogue is the table below (and
`info.x-problem-codes`, and docs/rules.md). `429` and `503` carry `Retry-After` (seconds).

**Rules.** What an invoice must be, and every reason code: docs/rules.md (generated from the code's own table).
"""


def _clean(node: Any) -> Any:
    """Docstrings as Markdown: RST's double backticks become single ones."""
    if isinstance(node, dict):
        return {
            k: (v.replace("``", "`") if k == "description" and isinstance(v, str) else _clean(v))
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_clean(v) for v in node]
    return node


def _json(schema: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": REF.format(name=schema)}}}


def _ok(schema: str, description: str, status: str = "200") -> dict[str, Any]:
    return {status: {"description": description, "content": _json(schema)}}


def _problems(*statuses: int) -> dict[str, Any]:
    return {str(status): {"$ref": f"#/components/responses/Problem{status}"} for status in statuses}


def _query(name: str, description: str, schema: dict[str, Any], required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "description": description, "schema": schema}


SIGNED_ERRORS = (401, 403, 405, 429, 500, 503)
CONNECTION_ERRORS = (408, 431)
CSV = {
    "type": "string",
    "description": "one row per day and scope (the day's, then per channel, then per industry; `*`: every one);"
    " its columns: "
    + ", ".join(f"`{c}`" for c in ("date", "channel", "industry", *report.columns()))
    + "; a by-reason figure is `reason:count;reason:count`, a null one empty",
}
CURSOR_OR_EMPTY = {"type": "string", "pattern": "^([0-9]+-[0-9]+)?$"}


def _operation(
    summary: str, description: str, tag: str, responses: dict[str, Any], signed: bool = True, **more: Any
) -> dict[str, Any]:
    # Any request may be refused by the connection's guards (gateway/connections.py) before a route sees it.
    guarded = {**responses, **_problems(*CONNECTION_ERRORS)}
    op: dict[str, Any] = {"summary": summary, "description": description, "tags": [tag], "responses": guarded}
    if signed:
        op["security"] = SIGNED
        op["parameters"] = [{"$ref": f"#/components/parameters/{name}"} for name in AUTH_HEADERS] + more.pop(
            "parameters", []
        )
    else:
        op["security"] = []
        if "parameters" in more:
            op["parameters"] = more.pop("parameters")
    op.update(more)
    return op


def _body(schema: str, msgpack: bool = False) -> dict[str, Any]:
    content = _json(schema)
    if msgpack:
        content["application/msgpack"] = content["application/json"]
    return {"required": True, "content": content}


def paths() -> dict[str, Any]:
    """Every endpoint the gateway serves (gateway/app.py), with what it answers."""
    return {
        "/v1/invoices": {
            "post": _operation(
                "Upload invoices",
                "1 to 500 invoices (`GATEWAY_MAX_INVOICES`), a body of at most 1 MiB (`GATEWAY_MAX_BODY_BYTES`; 413"
                " before it is read whole). JSON, or msgpack of the same shape; without a Content-Type, JSON. `202`"
                " whatever becomes of each invoice: a result per invoice, in order (docs/rules.md).",
                "channel",
                {**_ok("UploadAnswer", "a result per invoice", "202"), **_problems(400, 413, 415, *SIGNED_ERRORS)},
                requestBody=_body("Upload", msgpack=True),
                operationId="upload_invoices",
            ),
            "get": _operation(
                "A consumer's invoices",
                "The invoices one of this channel's consumers (`user.id`) had accepted, oldest first, once the"
                " workers have written them; `from`/`to` are dates of acceptance in the campaign's time zone, both"
                " included.",
                "channel",
                {**_ok("Listing", "a page of invoices"), **_problems(400, *SIGNED_ERRORS)},
                parameters=[
                    _query(
                        "user",
                        "the channel's `user.id` of the consumer",
                        {"type": "string", "minLength": 1, "maxLength": 200},
                        True,
                    ),
                    _query("from", "first day of acceptance", {"type": "string", "format": "date"}),
                    _query("to", "last day of acceptance", {"type": "string", "format": "date"}),
                    _query(
                        "limit", "invoices in a page", {"type": "integer", "minimum": 1, "maximum": 500, "default": 100}
                    ),
                    _query("after", "the `next` of the page before", {"type": "string", "pattern": "^[0-9]+-[0-9]+$"}),
                ],
                operationId="list_invoices",
            ),
        },
        "/v1/invoices/{key}": {
            "get": _operation(
                "An invoice's status",
                "Its status and history, for the channel that uploaded it (or that uploaded it as a duplicate);"
                " 404 otherwise.",
                "channel",
                {**_ok("InvoiceStatus", "the status and its history"), **_problems(404, *SIGNED_ERRORS)},
                parameters=[
                    {
                        "name": "key",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "pattern": "^[0-9]{1,32}$"},
                    }
                ],
                operationId="invoice_status",
            )
        },
        "/v1/events": {
            "get": _operation(
                "The channel's change feed",
                "One event per status change of this channel's invoices after their 202 (verified, eligible with"
                " `batch_seq`, ineligible, held, released (`verified`, reason `released_in_review`), rejected in"
                " review, reversed), oldest first, kept for the campaign. Resume with `after` = the last `next`"
                " (omit it to start from the beginning); with `wait`, the request waits up to that many seconds"
                " for an event when none is there (long poll).",
                "channel",
                {**_ok("Events", "events after the cursor"), **_problems(400, *SIGNED_ERRORS)},
                parameters=[
                    _query("after", "a cursor this feed gave (`next`, or an event's `cursor`)", CURSOR_OR_EMPTY),
                    _query(
                        "limit", "events in a page", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}
                    ),
                    _query(
                        "wait",
                        "seconds to wait for an event (long poll)",
                        {"type": "number", "minimum": 0, "maximum": 30, "default": 0},
                    ),
                ],
                operationId="events",
            )
        },
        "/v1/reversals": {
            "post": _operation(
                "Report red-letter reversals",
                "The invoices became `reversed`; one already fed is followed by a `void` entry in the feed. A"
                " channel reverses at once only the invoices it submitted: another channel's reversal is"
                " `pending_confirmation` until the tax service confirms its red-letter invoice (then it takes"
                " effect) or says it holds none (`refused`). A reversal may come before its invoice: it is"
                " `recorded` and applies when the invoice commits, under the same rule. Sending one again answers"
                " where it stands (docs/security.md).",
                "channel",
                {**_ok("ReversalsAnswer", "a result per reversal", "202"), **_problems(400, *SIGNED_ERRORS)},
                requestBody=_body("Reversals"),
                operationId="report_reversals",
            )
        },
        "/v1/receipts/verify": {
            "post": _operation(
                "Check a receipt",
                "Whether a receipt (either format: docs/receipts.md) proves that the calling channel had the key"
                " accepted, and when. Ed25519 receipts verify offline too, with `GET /v1/keys`.",
                "channel",
                {**_ok("Verdict", "the verdict"), **_problems(400, *SIGNED_ERRORS)},
                requestBody=_body("Presented"),
                operationId="verify_receipt",
            )
        },
        "/v1/keys": {
            "get": _operation(
                "Receipt keys",
                "Every key receipts were ever signed with, as JSON Web Keys with their validity. A client of any"
                " role may read them; they are public: a channel hands them on with a receipt.",
                "any role",
                {**_ok("Keys", "the keys, oldest first"), **_problems(*SIGNED_ERRORS)},
                operationId="receipt_keys",
            )
        },
        "/v1/feed": {
            "get": _operation(
                "The sealed feed",
                "Sealed batches with `seq` greater than `after`, oldest first, at most `limit` of them (batches, up to"
                " `GATEWAY_FEED_MAX_LIMIT`, 100; over it is 400); with `wait`, a long poll. Each batch hash-chained to"
                " the one before (docs/hashing.md).",
                "draw",
                {**_ok("Feed", "batches after the cursor"), **_problems(400, *SIGNED_ERRORS)},
                parameters=[
                    _query("after", "the last seq read", {"type": "integer", "minimum": 0, "default": 0}),
                    _query(
                        "limit",
                        "batches (not entries)",
                        {"type": "integer", "minimum": 1, "maximum": 100, "default": 10},
                    ),
                    _query(
                        "wait",
                        "seconds to wait for a batch",
                        {"type": "number", "minimum": 0, "maximum": 30, "default": 0},
                    ),
                ],
                operationId="feed",
            )
        },
        "/v1/admin/held": {
            "get": _operation(
                "Held invoices",
                "Invoices held by a risk rule, by key; no person data.",
                "admin",
                {**_ok("Held", "held invoices"), **_problems(400, *SIGNED_ERRORS)},
                parameters=[
                    _query("after", "the last key read", {"type": "string"}),
                    _query("limit", "invoices", {"type": "integer", "minimum": 1, "maximum": 500, "default": 100}),
                ],
                operationId="held_invoices",
            )
        },
        "/v1/admin/held/{key}": {
            "post": _operation(
                "Decide a held invoice",
                "Release it into the feed (`verified`) or reject it (`ineligible`, `rejected_in_review`).",
                "admin",
                {**_ok("Decided", "the new status"), **_problems(400, 404, 409, *SIGNED_ERRORS)},
                parameters=[
                    {
                        "name": "key",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "pattern": "^[0-9]{1,32}$"},
                    }
                ],
                requestBody=_body("Decision"),
                operationId="decide_held",
            )
        },
        "/v1/admin/reversals-by-seller": {
            "get": _operation(
                "Reversals by seller",
                "Sellers by how many invoices were reversed in the last `days` days.",
                "admin",
                {**_ok("ReversalsBySeller", "the sellers, most reversals first"), **_problems(400, *SIGNED_ERRORS)},
                parameters=[
                    _query("days", "days back", {"type": "number", "exclusiveMinimum": 0, "maximum": 366, "default": 7})
                ],
                operationId="reversals_by_seller",
            )
        },
        "/v1/reports/daily": {
            "get": _operation(
                "Daily indicators",
                "The campaign's figures per day (in its time zone), from rollups kept by the transactions that make"
                " each change: `date` for one day, or `from` and `to` (both included, at most"
                " `GATEWAY_REPORTS_MAX_DAYS`, 366) for one report per day; `channel` for one channel's figures. JSON,"
                " or CSV with `Accept: text/csv`. What each figure counts: docs/api.md.",
                "auditor",
                {
                    "200": {
                        "description": "one report per day",
                        "content": {**_json("DailyReport"), "text/csv": {"schema": CSV}},
                    },
                    **_problems(400, *SIGNED_ERRORS),
                },
                parameters=[
                    _query("date", "one day, YYYY-MM-DD (or from and to)", {"type": "string", "format": "date"}),
                    _query("from", "first day, YYYY-MM-DD (with to)", {"type": "string", "format": "date"}),
                    _query("to", "last day, YYYY-MM-DD (with from)", {"type": "string", "format": "date"}),
                    _query(
                        "channel", "one channel's figures", {"type": "string", "pattern": "^[A-Za-z0-9_.:-]{1,64}$"}
                    ),
                ],
                operationId="daily_report",
            )
        },
        "/v1/admin/reconciliation": {
            "get": _operation(
                "Reconcile a day",
                "Every key accepted on the day (campaign time zone) explained (where it is, and why) or not (what is"
                " wrong), the daily report's totals against what the data holds, the outbox's delivery; `ok` when"
                " nothing is unexplained. The same as `gateway reconcile --date D --json`. docs/api.md.",
                "auditor",
                {**_ok("Reconciliation", "the day's reconciliation"), **_problems(400, *SIGNED_ERRORS)},
                parameters=[
                    _query("date", "the day, YYYY-MM-DD", {"type": "string", "format": "date"}, True),
                    _query(
                        "limit",
                        "keys listed, explained and unexplained each (default `GATEWAY_RECONCILE_LISTED`, 100)",
                        {"type": "integer", "minimum": 1, "maximum": 100000},
                    ),
                ],
                operationId="reconciliation",
            )
        },
        **prize_paths(),
        "/healthz": {
            "get": _operation(
                "Liveness", "The process is alive.", "ops", _ok("Alive", "alive"), signed=False, operationId="healthz"
            )
        },
        "/readyz": {
            "get": _operation(
                "Readiness",
                "200 only when Redis and PostgreSQL answer and the process is not draining.",
                "ops",
                {
                    "200": {"description": "ready", "content": _json("Readiness")},
                    "503": {"description": "not ready", "content": _json("Readiness")},
                },
                signed=False,
                operationId="readyz",
            )
        },
        "/metrics": {
            "get": _operation(
                "Prometheus metrics",
                "Every process of the server, in Prometheus text format.",
                "ops",
                {"200": {"description": "the metrics", "content": {"text/plain": {"schema": {"type": "string"}}}}},
                signed=False,
                operationId="metrics",
            )
        },
        "/openapi.json": {
            "get": _operation(
                "This document",
                "",
                "ops",
                {
                    "200": {
                        "description": "OpenAPI 3.1",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
                signed=False,
                operationId="openapi",
            )
        },
        "/docs": {
            "get": _operation(
                "This document, to read",
                "",
                "ops",
                {"200": {"description": "a page (Redoc)", "content": {"text/html": {"schema": {"type": "string"}}}}},
                signed=False,
                operationId="docs",
            )
        },
    }


def _path_id(name: str, pattern: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string", "pattern": pattern}}


DRAW_ID = _path_id("draw_id", "^[A-Za-z0-9_.-]{1,64}$")


def prize_paths() -> dict[str, Any]:
    """The draws and the prizes (docs/draw.md)."""
    return {
        "/v1/prizes": {
            "get": _operation(
                "The channel's prizes",
                "Prizes won by this channel's invoices, by id; pay a prize once it is `payable` (one the campaign"
                " verifies again is `awarded` until then), before `expires_at`. The change feed announces each"
                " prize event (`prize_*`, with its `prize_id`).",
                "channel",
                {**_ok("PrizeList", "a page of prizes"), **_problems(400, *SIGNED_ERRORS)},
                parameters=[
                    _query("after", "the `next` of the page before", {"type": "string", "maxLength": 80}),
                    _query("limit", "prizes", {"type": "integer", "minimum": 1, "maximum": 500, "default": 100}),
                ],
                operationId="list_prizes",
            )
        },
        "/v1/prizes/{prize_id}/paid": {
            "post": _operation(
                "Confirm a prize paid",
                "The channel paid the prize to its consumer: a row of the prize ledger. The same confirmation again"
                " is the same answer.",
                "channel",
                {**_ok("PaidAnswer", "paid"), **_problems(400, 404, 409, *SIGNED_ERRORS)},
                parameters=[_path_id("prize_id", "^[A-Za-z0-9_.-]{1,64}:[0-9]{1,9}$")],
                requestBody=_body("PaidIn"),
                operationId="confirm_paid",
            )
        },
        "/v1/draws": {
            "post": _operation(
                "Commit a draw's seed",
                "The SHA-256 of the draw's secret, before its window closes (an instant draw's: before it opens),"
                " with the draw's public key and the public randomness it will take. The gateway records when, and"
                " the last batch sealed then. The same commitment again is the same answer.",
                "draw",
                {**_ok("DrawRecord", "the draw as recorded"), **_problems(400, 409, *SIGNED_ERRORS)},
                requestBody=_body("DrawCommit"),
                operationId="commit_draw",
            )
        },
        "/v1/draws/{draw_id}": {
            "get": _operation(
                "A draw",
                "Its commitment as recorded, and its signed result once published (docs/draw.md: anyone can"
                " re-derive the winners from the feed with `draw verify`).",
                "any role",
                {**_ok("DrawRecord", "the draw"), **_problems(404, *SIGNED_ERRORS)},
                parameters=[DRAW_ID],
                operationId="read_draw",
            )
        },
        "/v1/draws/{draw_id}/awards": {
            "post": _operation(
                "Record a draw's awards",
                "Prizes of the draw, all or nothing: checked against the campaign's tiers, the feed, the draw's"
                " limits and the budget; recorded in the prize ledger.",
                "draw",
                {**_ok("AwardsAnswer", "each prize's status"), **_problems(400, 404, 409, *SIGNED_ERRORS)},
                parameters=[DRAW_ID],
                requestBody=_body("AwardsIn"),
                operationId="record_awards",
            )
        },
        "/v1/draws/{draw_id}/result": {
            "post": _operation(
                "Publish a draw's result",
                "The signed result document (docs/draw.md), once: its commitment, secret, signature, window's last"
                " batch and winners are checked against the draw as recorded.",
                "draw",
                {**_ok("DrawRecord", "the draw, published"), **_problems(400, 404, 409, *SIGNED_ERRORS)},
                parameters=[DRAW_ID],
                requestBody={"required": True, "content": {"application/json": {"schema": {"type": "object"}}}},
                operationId="publish_result",
            )
        },
        "/v1/admin/prize-ledger": {
            "get": _operation(
                "The prize ledger",
                "Totals (paid + outstanding + remaining + returned = budget), by tier, the checks that reconcile"
                " them with the prizes and the draws' rules, and a page of the movements, each with its cause. The"
                " same as `gateway prize-ledger --json`.",
                "auditor",
                {**_ok("PrizeLedger", "the ledger"), **_problems(400, *SIGNED_ERRORS)},
                parameters=[
                    _query("after", "the last movement id read", {"type": "integer", "minimum": 0, "default": 0}),
                    _query("limit", "movements", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}),
                ],
                operationId="prize_ledger",
            )
        },
    }


def components() -> dict[str, Any]:
    _, found = msgspec.json.schema_components(MODELS, ref_template=REF)
    responses = {}
    for status in sorted({c.status for c in codes.CATALOGUE}):
        names = [c.name for c in codes.CATALOGUE if c.status == status]
        problem = {"allOf": [{"$ref": REF.format(name="Problem")}, {"properties": {"code": {"enum": names}}}]}
        headers = {"Retry-After": {"$ref": "#/components/headers/RetryAfter"}} if status in (429, 503) else {}
        responses[f"Problem{status}"] = {
            "description": "; ".join(f"`{c.name}`: {c.meaning}" for c in codes.CATALOGUE if c.status == status),
            "content": {"application/problem+json": {"schema": problem}},
            **({"headers": headers} if headers else {}),
        }
    return {
        "schemas": _clean(found),
        "responses": responses,
        "parameters": {
            name: {
                "name": header,
                "in": "header",
                "required": True,
                "description": meaning,
                "schema": {"type": "string", "pattern": HEADER_PATTERNS[name]},
            }
            for name, (header, meaning) in AUTH_HEADERS.items()
        },
        "headers": {
            "RetryAfter": {
                "description": "seconds to wait before retrying",
                "schema": {"type": "integer", "minimum": 1},
            }
        },
        "securitySchemes": {
            name: {"type": "apiKey", "in": "header", "name": header, "description": meaning}
            for name, (header, meaning) in AUTH_HEADERS.items()
        },
    }


def catalogue() -> str:
    """The problem codes as a Markdown table, for the document's description (what /docs shows)."""
    rows = "".join(f"| `{c.name}` | {c.status} | {c.meaning} |\n" for c in codes.CATALOGUE)
    return "\n**Problem codes**\n\n| code | status | meaning |\n| --- | --- | --- |\n" + rows


def document() -> dict[str, Any]:
    """The whole OpenAPI document."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Prize-invoice ingestion gateway",
            "version": metadata.version("prize-invoice-gateway"),
            "description": DESCRIPTION + catalogue(),
            "x-problem-codes": [{"code": c.name, "status": c.status, "meaning": c.meaning} for c in codes.CATALOGUE],
        },
        "tags": [
            {"name": "channel", "description": "role channel: the platforms that upload"},
            {"name": "draw", "description": "role draw: the draw service (docs/draw.md)"},
            {"name": "admin", "description": "role admin"},
            {
                "name": "auditor",
                "description": "roles auditor and admin: the city's reports and reconciliation, read only",
            },
            {"name": "any role", "description": "any client"},
            {"name": "ops", "description": "operations, no signature"},
        ],
        "paths": paths(),
        "webhooks": webhooks(),
        "components": components(),
    }


def webhooks() -> dict[str, Any]:
    """What the gateway sends to a channel's own URL when it has one (``gateway set-webhook``)."""
    return {
        "events": {
            "post": {
                "summary": "A channel's change feed, pushed",
                "description": "The events `GET /v1/events` gives, pushed to the channel's URL as they happen: at"
                " least once each (`id` tells a resend), in order per invoice. Signed as a channel signs its requests,"
                " with the channel's own secret and `X-Client-Id` the gateway's (`GATEWAY_EXPORT_CLIENT_ID`). Any 2xx"
                " takes the batch; 429 and 503 with `Retry-After` are honoured; another 4xx parks it until an operator"
                " sends it again; anything else is retried with backoff (workers/webhook.py).",
                "tags": ["channel"],
                "parameters": [{"$ref": f"#/components/parameters/{name}"} for name in AUTH_HEADERS],
                "requestBody": _body("Pushed"),
                "responses": {"2XX": {"description": "taken: the events are not sent again"}},
            }
        }
    }


def text() -> bytes:
    """The document as served and as docs/openapi.json holds it (keys in order, indented, a final newline)."""
    return orjson.dumps(document(), option=orjson.OPT_INDENT_2) + b"\n"


if __name__ == "__main__":
    sys.stdout.buffer.write(text())
