"""Every problem ``code`` the gateway answers with, its HTTP status and what it means: the one table that
gateway/errors.py raises from and the OpenAPI document's error catalogue is generated from (gateway/openapi.py),
so that the two cannot drift.

A route raises ``Problem(codes.UNKNOWN_INVOICE, detail)``; the status, title and type come from here.
"""

from __future__ import annotations

from typing import NamedTuple

ABOUT_BLANK = "about:blank"
TYPE_RATE_LIMITED = "urn:invoice-gateway:problem:rate-limited"
TYPE_UNAVAILABLE = "urn:invoice-gateway:problem:unavailable"
TYPE_OVERLOADED = "urn:invoice-gateway:problem:overloaded"

TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    408: "Request timeout",
    409: "Conflict",
    413: "Payload too large",
    415: "Unsupported media type",
    431: "Request header fields too large",
    429: "Too many requests",
    500: "Internal error",
    503: "Service unavailable",
}


class Code(NamedTuple):
    """A problem code: its name (the ``code`` member), HTTP status, meaning and RFC 9457 ``type``."""

    name: str
    status: int
    meaning: str
    type: str = ABOUT_BLANK

    @property
    def title(self) -> str:
        return TITLES[self.status]


CATALOGUE: list[Code] = []


def _code(name: str, status: int, meaning: str, type: str = ABOUT_BLANK) -> Code:
    code = Code(name, status, meaning, type)
    CATALOGUE.append(code)
    return code


# Authentication (every /v1 endpoint but /v1/keys), before anything else happens.
MISSING_AUTH_HEADER = _code("missing_auth_header", 401, "X-Client-Id, X-Timestamp, X-Nonce or X-Signature is missing")
UNKNOWN_CLIENT = _code("unknown_client", 401, "no client has this X-Client-Id")
STALE_TIMESTAMP = _code(
    "stale_timestamp", 401, "X-Timestamp is not Unix seconds within the allowed skew (300 s) of the gateway's clock"
)
BAD_NONCE = _code("bad_nonce", 401, "X-Nonce is not 16 to 64 characters of A-Z a-z 0-9 _ -")
BAD_SIGNATURE = _code("bad_signature", 401, "X-Signature is not the HMAC-SHA256 of the canonical string")
REPLAYED_NONCE = _code("replayed_nonce", 401, "this client used this X-Nonce within its life (600 s): a replay")
WRONG_ROLE = _code("wrong_role", 403, "the client's role may not call this endpoint")
# The request itself.
NOT_FOUND = _code("not_found", 404, "no endpoint at this path")
METHOD_NOT_ALLOWED = _code("method_not_allowed", 405, "the endpoint does not take this method (see Allow)")
BAD_CONTENT_LENGTH = _code("bad_content_length", 400, "Content-Length is not a number")
BODY_TOO_LARGE = _code("body_too_large", 413, "the body is over the size limit (1 MiB by default)")
REQUEST_TIMEOUT = _code(
    "request_timeout",
    408,
    "the headers (10 s) or the body (20 s) did not arrive in time; the connection is closed (docs/security.md)",
)
HEADERS_TOO_LARGE = _code(
    "headers_too_large", 431, "the request line and headers are over 16 KiB; the connection is closed"
)
UNSUPPORTED_MEDIA_TYPE = _code(
    "unsupported_media_type", 415, "an upload's Content-Type is neither JSON nor msgpack (none is JSON)"
)
MALFORMED_BODY = _code("malformed_body", 400, "the body does not parse, or is not the endpoint's object")
UNKNOWN_FIELD = _code("unknown_field", 400, "the body's top-level object has a member the endpoint does not know")
INVOICE_COUNT = _code("invoice_count", 400, "an upload holds 0 invoices, or more than the limit (500 by default)")
REVERSAL_COUNT = _code("reversal_count", 400, "a request holds 0 reversals, or more than the limit (500 by default)")
BAD_PARAMETER = _code("bad_parameter", 400, "a query parameter is out of its range or not of its form")
INVALID_LIMIT = _code("invalid_limit", 400, "limit is not a whole number")
INVALID_NOTE = _code("invalid_note", 400, "a review's note is empty or over 500 characters")
INVALID_DAYS = _code("invalid_days", 400, "days is not a number above 0 and at most 366")
UNKNOWN_INVOICE = _code("unknown_invoice", 404, "no invoice with this key (that this channel submitted)")
NOT_HELD = _code("not_held", 409, "a review decided an invoice that is not held")
# Draws and prizes (docs/draw.md).
INVALID_DRAW = _code(
    "invalid_draw",
    400,
    "a draw's commitment is not of its form (id, kind, window with time zones, hex SHA-256, Ed25519 key), or the"
    " campaign has no prize tiers of its kind",
)
WINDOW_CLOSED = _code(
    "window_closed", 409, "the draw's window has closed (an instant draw's: opened): too late to commit its seed"
)
DRAW_CONFLICT = _code("draw_conflict", 409, "a draw of this id was committed before, with other values")
UNKNOWN_DRAW = _code("unknown_draw", 404, "no draw of this id was committed")
INVALID_AWARD = _code(
    "invalid_award",
    400,
    "an award names a tier or amount the campaign's draws do not have, an invoice not fed, a prize id not of its"
    " draw, or a key twice",
)
AWARD_CONFLICT = _code(
    "award_conflict",
    409,
    "the awards contradict what the draw holds: a prize id recorded otherwise, more prizes than a tier's count, a"
    " person over its wins, a draw already published",
)
OVER_BUDGET = _code(
    "over_budget", 409, "the awards would commit more prize money than the campaign's budget (or an instant draw's)"
)
INVALID_RESULT = _code(
    "invalid_result", 400, "a result does not fit its draw: its commitment, secret, signature, window or winners"
)
RESULT_CONFLICT = _code("result_conflict", 409, "the draw's result was published before, and differs")
UNKNOWN_PRIZE = _code("unknown_prize", 404, "no prize of this id among this channel's invoices")
PRIZE_NOT_PAYABLE = _code(
    "prize_not_payable", 409, "the prize waits for its winner's re-verification, or was withdrawn or expired"
)
PAYMENT_CONFLICT = _code("payment_conflict", 409, "the prize was confirmed paid before, with another payment_ref")
# The gateway's capacity.
CHANNEL_RATE_LIMITED = _code(
    "channel_rate_limited",
    429,
    "the channel is over its request or invoice rate; retry after Retry-After",
    TYPE_RATE_LIMITED,
)
OVERLOADED = _code(
    "overloaded",
    503,
    "the gateway is shedding load (or the pipeline behind it is saturated); retry after Retry-After",
    TYPE_OVERLOADED,
)
STORE_UNAVAILABLE = _code(
    "store_unavailable", 503, "Redis or PostgreSQL did not answer in time; retry after Retry-After", TYPE_UNAVAILABLE
)
INTERNAL_ERROR = _code("internal_error", 500, "the gateway's bug: it has been logged")

BY_NAME = {c.name: c for c in CATALOGUE}
