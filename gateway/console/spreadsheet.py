"""The daily report as an XLSX workbook: one sheet holding the rows of the CSV (core/report.py ``table``), the
counts and amounts as numbers a spreadsheet can sum, the reason maps as the CSV writes them.

openpyxl writes it (in its write-only mode, row by row) and the tests read it back with the same library: one
dependency for both, where xlsxwriter would write only.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from core import report


def daily_xlsx(days: Sequence[dict[str, Any]], title: str) -> bytes:
    """The workbook of ``days``: a sheet named ``daily`` with a header row and a row per day and scope."""
    # Imported when a workbook is asked for: openpyxl is a seventh of what a gateway process imports to start
    # (about 150 ms of 1.1 s, benchmarks/startup.py), for a download an operator makes now and then.
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet("daily")
    sheet.append(report.header())
    for row in report.table(days):
        sheet.append([v if isinstance(v, int) or v is None else report.cell_text(v) for v in row])
    book.properties.title = title
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
