"""Query parameters read the same way on every route: a bad one is ``400 bad_parameter`` naming it."""

from __future__ import annotations

import re

from starlette.requests import Request

from gateway import codes
from gateway.errors import Problem

DIGITS = re.compile(r"[0-9]{1,19}")


def int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not DIGITS.fullmatch(raw) or not low <= int(raw) <= high:
        raise Problem(codes.BAD_PARAMETER, f"{name} must be an integer from {low} to {high}")
    return int(raw)


def seconds_param(request: Request, name: str, default: float, high: float) -> float:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value <= high:
        raise Problem(codes.BAD_PARAMETER, f"{name} must be a number of seconds from 0 to {high:g}")
    return value
