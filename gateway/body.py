"""Reading a request body with a size limit, refusing before the body is read whole."""

from __future__ import annotations

from starlette.requests import Request

from gateway.errors import BadRequest, PayloadTooLarge


async def read_limited(request: Request, limit: int) -> bytes:
    """The whole body, or ``413`` as soon as the declared or received size passes ``limit``."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not (declared.isascii() and declared.isdigit()) or len(declared) > 19:
            raise BadRequest("bad_content_length", "Content-Length must be a number")
        if int(declared) > limit:
            raise PayloadTooLarge("body_too_large", f"the body is over {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge("body_too_large", f"the body is over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
