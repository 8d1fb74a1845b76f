"""Stage 2 of an upload, parsing: the body read within its size limit, then decoded into invoices (msgspec), one
invoice that does not fit the shape becoming its own rejection while the rest go on.

A body over the limit is ``413`` from its ``Content-Length`` before it is read, or as soon as a streamed body
passes the limit. JSON (also without a ``Content-Type``) or msgpack (``application/msgpack``); anything else
is ``415``."""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.requests import Request

from gateway import codes
from gateway.errors import Problem
from gateway.model import Invoice, RawUpload, Upload
from gateway.validate import Rejection

JSON_UPLOAD = msgspec.json.Decoder(Upload)
JSON_RAW = msgspec.json.Decoder(RawUpload)
JSON_INVOICE = msgspec.json.Decoder(Invoice)
MSGPACK_UPLOAD = msgspec.msgpack.Decoder(Upload)
MSGPACK_RAW = msgspec.msgpack.Decoder(RawUpload)
MSGPACK_INVOICE = msgspec.msgpack.Decoder(Invoice)
MSGPACK_TYPES = ("application/msgpack", "application/x-msgpack", "application/vnd.msgpack")


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


def decode(body: bytes, content_type: str, max_invoices: int) -> list[Invoice | Rejection]:
    """The invoices of a body; one that does not fit the Invoice shape becomes its own Rejection."""
    media = content_type.partition(";")[0].strip().lower()
    whole: Any
    raw: Any
    single: Any
    if media in MSGPACK_TYPES:
        whole, raw, single = MSGPACK_UPLOAD, MSGPACK_RAW, MSGPACK_INVOICE
    elif media in ("application/json", ""):
        whole, raw, single = JSON_UPLOAD, JSON_RAW, JSON_INVOICE
    else:
        raise Problem(codes.UNSUPPORTED_MEDIA_TYPE, "send application/json or application/msgpack")
    try:
        return _counted(list(whole.decode(body).invoices), max_invoices)
    except msgspec.DecodeError:
        pass  # some invoice does not fit: decode them one by one, each failure its own rejection
    try:
        parts = raw.decode(body).invoices
    except msgspec.DecodeError as exc:
        raise Problem(codes.MALFORMED_BODY, f'the body must be {{"invoices": [...]}}: {exc}') from exc
    _counted(parts, max_invoices)  # before decoding each: a huge list of junk costs one check
    return [_decode_one(single, part) for part in parts]


def _counted(items: list[Any], max_invoices: int) -> list[Any]:
    if not 1 <= len(items) <= max_invoices:
        raise Problem(codes.INVOICE_COUNT, f"send 1 to {max_invoices} invoices")
    return items


def _decode_one(decoder: Any, part: msgspec.Raw) -> Invoice | Rejection:
    try:
        invoice: Invoice = decoder.decode(part)
    except msgspec.DecodeError as exc:
        return Rejection("invalid_shape", str(exc))
    return invoice
