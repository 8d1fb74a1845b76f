"""Times as the API and the feed write them: UTC, milliseconds, ``2026-03-01T20:00:01.250Z``."""

from __future__ import annotations

import datetime as dt
import functools
import time
from zoneinfo import ZoneInfo

MINUTE_MS = 60_000


def iso_ms(at: dt.datetime) -> str:
    """A time as the feed and the API write it: ``2026-03-01T20:00:01.250Z``."""
    return at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def iso_from_ms(ms: int) -> str:
    """The same, from Unix milliseconds (exact: no float on the way)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def from_ms(ms: int) -> dt.datetime:
    """Unix milliseconds as an aware UTC datetime."""
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC)


def local_minute(ms: int, tz: ZoneInfo) -> dt.datetime:
    """The local time in ``tz`` of the minute holding Unix ms ``ms``: worked out once a minute, not per request
    (every zone's day starts on a whole minute), for what only needs the day or the month (validation's today,
    the caps' month and day)."""
    return _minute(ms // MINUTE_MS, tz)


@functools.lru_cache(maxsize=64)
def _minute(minute: int, tz: ZoneInfo) -> dt.datetime:
    return dt.datetime.fromtimestamp(minute * 60, tz)
