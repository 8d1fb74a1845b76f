"""Charts drawn on the server as SVG, inline in the page: nothing to fetch, no script, readable at a glance and
in a screenshot. Colours come from the console's stylesheet (classes), so the page's CSS policy allows no inline
style. Each mark carries a ``<title>`` (its value on hover) and each chart an ``aria-label``.

Pure functions of numbers and labels; labels are escaped.
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

WIDTH = 640


def _svg(width: int, height: int, label: str, body: str, css: str = "chart") -> Markup:
    return Markup(
        f'<svg class="{css}" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}"'
        f' xmlns="http://www.w3.org/2000/svg">{body}</svg>'
    )


def _fmt(n: int) -> str:
    return f"{n:,}"


def columns(points: Sequence[tuple[str, int]], label: str, height: int = 180, every: int = 3) -> Markup:
    """Vertical bars, one per point (an hour, a day), the axis labelled every ``every`` points and at the top
    by the largest value."""
    top = max((v for _, v in points), default=0) or 1
    plot_h, base, left = height - 40, height - 22, 48
    slot = (WIDTH - left - 8) / max(1, len(points))
    parts = [
        f'<line class="axis" x1="{left}" y1="{base}" x2="{WIDTH - 8}" y2="{base}"/>',
        f'<line class="grid" x1="{left}" y1="{base - plot_h}" x2="{WIDTH - 8}" y2="{base - plot_h}"/>',
        f'<text class="tick" x="{left - 6}" y="{base - plot_h + 4}" text-anchor="end">{_fmt(top)}</text>',
        f'<text class="tick" x="{left - 6}" y="{base + 4}" text-anchor="end">0</text>',
    ]
    for i, (name, value) in enumerate(points):
        h = plot_h * value / top
        x = left + i * slot
        tip = f"<title>{escape(name)}: {_fmt(value)}</title>"
        parts.append(
            f'<rect class="bar" x="{x + slot * 0.15:.1f}" y="{base - h:.1f}" width="{slot * 0.7:.1f}"'
            f' height="{h:.1f}">{tip}</rect>'
        )
        if i % every == 0:
            parts.append(
                f'<text class="tick" x="{x + slot / 2:.1f}" y="{base + 16}" text-anchor="middle">{escape(name)}</text>'
            )
    return _svg(WIDTH, height, label, "".join(parts))


def rows(items: Sequence[tuple[str, int]], label: str, css: str = "bar") -> Markup:
    """Horizontal bars, one per item (a reason, a channel), largest first as given, each with its value."""
    top = max((v for _, v in items), default=0) or 1
    row, left, right = 26, 220, 80
    height = max(1, len(items)) * row + 4
    parts = []
    for i, (name, value) in enumerate(items):
        y = i * row + 4
        w = (WIDTH - left - right) * value / top
        short = name if len(name) <= 18 else name[:17] + "…"
        parts.append(
            f'<text class="label" x="{left - 8}" y="{y + 15}" text-anchor="end">{escape(short)}'
            f"<title>{escape(name)}</title></text>"
            f'<rect class="{css}" x="{left}" y="{y + 3}" width="{max(w, 1):.1f}" height="{row - 8}">'
            f"<title>{escape(name)}: {_fmt(value)}</title></rect>"
            f'<text class="value" x="{left + w + 6:.1f}" y="{y + 15}">{_fmt(value)}</text>'
        )
    if not items:
        parts.append(f'<text class="tick" x="{left}" y="18">—</text>')
    return _svg(WIDTH, height, label, "".join(parts))


def stack(items: Sequence[tuple[str, str, int]], label: str) -> Markup:
    """One bar split into parts (key, label, value): each part's share of the whole, its class ``k-<key>``."""
    total = sum(v for _, _, v in items)
    height, x, parts = 36, 0.0, []
    for key, name, value in items:
        if not value:
            continue
        w = WIDTH * value / total
        share = f"{value / total:.1%}"
        parts.append(
            f'<rect class="k-{escape(key)}" x="{x:.1f}" y="4" width="{w:.1f}" height="{height - 8}">'
            f"<title>{escape(name)}: {_fmt(value)} ({share})</title></rect>"
        )
        x += w
    if not parts:
        parts.append(f'<rect class="empty" x="0" y="4" width="{WIDTH}" height="{height - 8}"/>')
    return _svg(WIDTH, height, label, "".join(parts), "chart stack")


def spark(values: Sequence[int], label: str) -> Markup:
    """A small line of values (an hour each), for a table cell."""
    width, height = 120, 28
    top = max(values, default=0) or 1
    step = width / max(1, len(values) - 1)
    points = " ".join(f"{i * step:.1f},{height - 3 - (height - 6) * v / top:.1f}" for i, v in enumerate(values))
    return _svg(width, height, label, f'<polyline class="spark" points="{points}"/>', "spark")
