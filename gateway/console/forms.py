"""The console's forms: ``application/x-www-form-urlencoded`` bodies of at most 64 KiB, read without a multipart
parser (the console uploads no files), and the checks its free text goes through."""

from __future__ import annotations

import re
from urllib.parse import parse_qs

from starlette.requests import Request

from core.checks import id_number_problem
from gateway import codes
from gateway.errors import Problem

MAX_BYTES = 64 * 1024
FORM_TYPE = "application/x-www-form-urlencoded"
# 18 characters shaped like a resident ID number; a mobile number (11 digits from 13 to 19).
ID_LIKE = re.compile(r"(?<![0-9])[0-9]{17}[0-9Xx](?![0-9])")
MOBILE = re.compile(r"(?<![0-9])1[3-9][0-9]{9}(?![0-9])")


class Form:
    """A form's fields: ``get`` the first value of a name, ``all`` of them."""

    def __init__(self, fields: dict[str, list[str]]) -> None:
        self.fields = fields

    def get(self, name: str, default: str = "") -> str:
        return self.fields.get(name, [default])[0]

    def all(self, name: str) -> list[str]:
        return self.fields.get(name, [])


async def read(request: Request) -> Form:
    """The form of a POST; ``bad_parameter`` when it is not a form or is over the size limit."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != FORM_TYPE:
        raise Problem(codes.UNSUPPORTED_MEDIA_TYPE, f"a console form is {FORM_TYPE}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BYTES:
            raise Problem(codes.BODY_TOO_LARGE, f"a console form is at most {MAX_BYTES} bytes")
    try:
        return Form(parse_qs(body.decode(), keep_blank_values=True, strict_parsing=False, max_num_fields=1000))
    except (UnicodeDecodeError, ValueError) as exc:
        raise Problem(codes.MALFORMED_BODY, "the form does not parse") from exc


def personal_data(text: str) -> str | None:
    """What of a consumer's personal data a note or a summary holds ("id_number", "mobile"), or None. Staff
    write what a consumer asks, not who the consumer is: the ledger keeps no ID number or phone number."""
    if any(id_number_problem(m.upper()) is None for m in ID_LIKE.findall(text)):
        return "id_number"
    if MOBILE.search(text):
        return "mobile"
    return None
