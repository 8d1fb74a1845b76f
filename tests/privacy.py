"""What must never appear in a log (or any file the product writes): secrets, names, ID numbers, locations.
Shared by the log test, the archives' test and the end of the test session, which searches every log the
session's stack wrote."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

# An 18-character resident ID number: area, birth date (19xx/20xx), sequence, check character.
ID_NUMBER = re.compile(
    r"(?<![0-9])[0-9]{6}(?:19|20)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])[0-9]{3}[0-9X](?![0-9])"
)
NAMES = ("张三", "李四")  # the buyers' names the samples and tests upload
ID_NUMBERS = ("11010519491231002X",)
# Where the tests' consumers "were" (Hefei, finer than the campaign's centre of 31.82, 117.23): a location never
# leaves the gateway, only its distance from the centre does.
LOCATIONS = ("31.8206", "117.2272")


def leaks(paths: Iterable[Path], forbidden: Iterable[str]) -> list[str]:
    """Every forbidden word or ID-number-like string found, as "<what> in <file>" (never the value of an ID)."""
    words = [*forbidden, *NAMES, *ID_NUMBERS, *LOCATIONS]
    found = []
    for path in paths:
        text = path.read_text(errors="replace")
        found += [f"{word!r} in {path.name}" for word in words if word in text]
        if ID_NUMBER.search(text):
            found.append(f"something like an ID number in {path.name}")
    return found
