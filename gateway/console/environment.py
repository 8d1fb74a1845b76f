"""The console's Jinja2 environment (made once per app, gateway/console/routes.py): templates from the package,
autoescaped, undefined names an error rather than an empty string, and the filters that write figures and times
as staff read them: ``num`` (1,234), ``yuan`` (fen as ¥12.50), ``local`` (a time in the campaign's zone), ``age``
(how long ago, in the page's language)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import jinja2


def num(n: int | None) -> str:
    return "" if n is None else f"{n:,}"


def yuan(fen: int | None) -> str:
    return "" if fen is None else f"¥{fen // 100:,}.{fen % 100:02d}"


def environment(timezone: str) -> jinja2.Environment:
    zone = ZoneInfo(timezone)
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("gateway.console", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )

    def local(at: dt.datetime | None, seconds: bool = True) -> str:
        if at is None:
            return ""
        return at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")

    env.filters.update(num=num, yuan=yuan, local=local, age=age)
    return env


def age(at: dt.datetime, lang: str) -> str:
    """How long ago ``at`` was: ``2 d 3 h``, ``3 h 12 min``, ``5 min`` (Chinese: 2天3小时...)."""
    minutes = max(0, int((dt.datetime.now(dt.UTC) - at).total_seconds() // 60))
    days, hours, mins = minutes // 1440, minutes // 60 % 24, minutes % 60
    units = ("天", "小时", "分钟") if lang == "zh" else (" d", " h", " min")
    sep = "" if lang == "zh" else " "
    if days:
        return f"{days}{units[0]}{sep}{hours}{units[1]}"
    if hours:
        return f"{hours}{units[1]}{sep}{mins}{units[2]}"
    return f"{mins}{units[2]}"
