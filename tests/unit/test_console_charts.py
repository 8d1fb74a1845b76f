"""The console's charts are SVG drawn on the server: sizes follow the values, labels are escaped, nothing is
styled inline (the console's CSP forbids it) and empty data still draws."""

from __future__ import annotations

import re

from gateway.console import charts


def heights(svg: str) -> list[float]:
    return [float(h) for h in re.findall(r'<rect class="bar"[^>]* height="([0-9.]+)"', svg)]


def test_columns_are_as_tall_as_their_values_and_the_axis_names_the_largest() -> None:
    svg = charts.columns([("00", 10), ("01", 5), ("02", 0)], "per hour")
    tall, half, none = heights(svg)
    assert tall == 2 * half and none == 0
    assert ">10<" in svg and 'aria-label="per hour"' in svg


def test_labels_are_escaped_and_nothing_is_styled_inline() -> None:
    svg = charts.rows([("<script>alert(1)</script>", 3)], 'a "label"') + charts.stack([("x", "<b>", 1)], "mix")
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "&#34;label&#34;" in svg
    assert "style=" not in svg


def test_a_stack_splits_the_whole_width_by_share() -> None:
    svg = charts.stack([("accepted", "ok", 3), ("rejected", "bad", 1), ("capped", "cap", 0)], "mix")
    widths = [float(w) for w in re.findall(r'width="([0-9.]+)" height', svg)]
    assert widths == [480.0, 160.0]  # 640 wide; a zero part draws nothing
    assert "(75.0%)" in svg


def test_empty_data_still_draws() -> None:
    for svg in (charts.columns([], "x"), charts.rows([], "x"), charts.stack([], "x"), charts.spark([], "x")):
        assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert 'points=""' not in charts.spark([0, 0, 0], "x")
