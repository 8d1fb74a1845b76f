"""Stage 2 of an upload, parsing: the body read within its size limit, then decoded into invoices (msgspec), one
invoice that does not fit the shape becoming its own rejection while the rest go on.

A body over the limit is ``413`` from its ``Content-Length`` before it is read, or as soon as a streamed body
passes the limit. JSON (also without a ``Content-Type``: curl's ``-d`` aside, a channel's HTTP client names
its JSON, and SPEC.md has always taken it) or msgpack (``application/msgpack``); anything else is ``415``.
A member the body's shapes do not define is ``unknown_field`` (gateway/model.py)."""

from __future__ import annotations

import re
from typing import Any, NamedTuple

import msgspec
import orjson
from starlette.requests import Request

from gateway import codes
from gateway.errors import Problem
from gateway.model import (
    Invoice,
    LenientInvoice,
    LenientRawUpload,
    LenientUpload,
    RawUpload,
    Upload,
)
from gateway.validate import Rejection

# What a decoder raises on a body it cannot read: msgspec's own error, or Python's recursion limit on a body
# nested deeper than about a thousand levels (a 100,000-deep JSON array is a 400, not a 500).
UNDECODABLE = (msgspec.DecodeError, RecursionError)
MSGPACK_TYPES = ("application/msgpack", "application/x-msgpack", "application/vnd.msgpack")
UNKNOWN = re.compile(r"Object contains unknown field `(.*?)`(?: - at `\$(?:\.(.*))?`)?")


class Decoders(NamedTuple):
    whole: Any  # the body at once
    raw: Any  # the body with its invoices undecoded
    single: Any  # one invoice


def _decoders(module: Any, lenient: bool) -> Decoders:
    shapes = (LenientUpload, LenientRawUpload, LenientInvoice) if lenient else (Upload, RawUpload, Invoice)
    return Decoders(*(module.Decoder(shape) for shape in shapes))


# (msgpack, lenient) -> the decoders of that body
DECODERS = {
    (m, lenient): _decoders(msgspec.msgpack if m else msgspec.json, lenient)
    for m in (False, True)
    for lenient in (False, True)
}


async def read_limited(request: Request, limit: int) -> bytes:
    """The whole body, or ``413`` as soon as the declared or received size passes ``limit``."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not (declared.isascii() and declared.isdigit()) or len(declared) > 19:
            raise Problem(codes.BAD_CONTENT_LENGTH, "Content-Length must be a number")
        if int(declared) > limit:
            raise Problem(codes.BODY_TOO_LARGE, f"the body is over {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Problem(codes.BODY_TOO_LARGE, f"the body is over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def media(content_type: str) -> bool:
    """Whether a body of this Content-Type is msgpack (True) or JSON (False: also when there is none); 415
    for any other."""
    kind = content_type.partition(";")[0].strip().lower()
    if kind in MSGPACK_TYPES:
        return True
    if kind in ("application/json", ""):
        return False
    raise Problem(codes.UNSUPPORTED_MEDIA_TYPE, "send application/json or application/msgpack")


def decode(body: bytes, msgpack: bool, max_invoices: int, lenient: bool = False) -> list[Invoice | Rejection]:
    """The invoices of a body; one that does not fit the Invoice shape becomes its own Rejection (``lenient``:
    members the shapes do not define are dropped rather than refused)."""
    decoders = DECODERS[(msgpack, lenient)]
    try:
        return _counted(list(decoders.whole.decode(body).invoices), max_invoices)
    except UNDECODABLE:
        pass  # some invoice does not fit: decode them one by one, each failure its own rejection
    try:
        parts = decoders.raw.decode(body).invoices
    except UNDECODABLE as exc:
        if (unknown := UNKNOWN.fullmatch(str(exc))) is not None and not unknown[2]:
            raise Problem(codes.UNKNOWN_FIELD, f"the body has a member {unknown[1]!r}: only invoices") from exc
        raise Problem(codes.MALFORMED_BODY, f'the body must be {{"invoices": [...]}}: {exc}') from exc
    _counted(parts, max_invoices)  # before decoding each: a huge list of junk costs one check
    return [_decode_one(decoders.single, part) for part in parts]


def as_invoice(fields: dict[str, Any]) -> Invoice:
    """An invoice from its JSON-able form, as the gateway would decode it (tests, benchmarks)."""
    invoice: Invoice = DECODERS[(False, False)].single.decode(orjson.dumps(fields))
    return invoice


def _counted(items: list[Any], max_invoices: int) -> list[Any]:
    if not 1 <= len(items) <= max_invoices:
        raise Problem(codes.INVOICE_COUNT, f"send 1 to {max_invoices} invoices")
    return items


def _decode_one(decoder: Any, part: msgspec.Raw) -> Invoice | Rejection:
    try:
        invoice: Invoice = decoder.decode(part)
    except UNDECODABLE as exc:
        unknown = UNKNOWN.fullmatch(str(exc))
        if unknown is not None:
            where = f"{unknown[2]}." if unknown[2] else ""
            return Rejection("unknown_field", f"{where}{unknown[1]} is not a member of an invoice (misspelt?)")
        return Rejection("invalid_shape", str(exc))
    return invoice
