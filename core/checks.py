"""Check characters of the identifiers on an invoice: pure functions, no I/O."""

from __future__ import annotations

import functools
import re

# GB 32100-2015: the unified social credit code (统一社会信用代码).
USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_VALUES = {c: i for i, c in enumerate(USCC_CHARS)}
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
USCC_SHAPE = re.compile(r"[0-9A-HJ-NP-RTUWXY]{2}[0-9]{6}[0-9A-HJ-NP-RTUWXY]{10}")
USCC_SHAPE_PROBLEM = "18 characters of 0-9 and A-Y without I, O, S, V, Z, with a 6-digit division code"

# GB 11643-1999: the resident identity number (ISO 7064 MOD 11-2).
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECKS = "10X98765432"
ID_SHAPE = re.compile(r"[0-9]{17}[0-9X]")


def uscc_check_char(first17: str) -> str:
    """The check character that completes the first 17 characters of a USCC."""
    total = sum(USCC_VALUES[c] * w for c, w in zip(first17, USCC_WEIGHTS, strict=True))
    return USCC_CHARS[(31 - total % 31) % 31]


def uscc_problem(code: str) -> str | None:
    """Why ``code`` is not a valid USCC, or None when it is."""
    if len(code) != 18:
        return USCC_SHAPE_PROBLEM
    return _uscc_problem(code)


@functools.lru_cache(maxsize=65536)
def _uscc_problem(code: str) -> str | None:
    """Remembered (18 characters only: about 10 MB when full): a city's sellers come back all evening, and a
    seller's tax id is no personal data."""
    if not USCC_SHAPE.fullmatch(code):
        return USCC_SHAPE_PROBLEM
    if uscc_check_char(code[:17]) != code[17]:
        return "check character mismatch"
    return None


def id_check_char(first17: str) -> str:
    """The check character that completes the first 17 digits of a resident ID number."""
    total = sum(int(c) * w for c, w in zip(first17, ID_WEIGHTS, strict=True))
    return ID_CHECKS[total % 11]


def id_number_problem(number: str) -> str | None:
    """Why ``number`` is not a valid 18-digit resident ID number, or None when it is."""
    if not ID_SHAPE.fullmatch(number):
        return "17 digits and a check character (0-9 or X)"
    if id_check_char(number[:17]) != number[17]:
        return "check digit mismatch"
    return None


def uscc_division(code: str) -> str:
    """The 6-digit administrative division code inside a USCC (characters 3 to 8)."""
    return code[2:8]
