"""Tables handed to spreadsheets (CSV and XLSX exports of the ledgers and registers).

Text a person typed (a ticket title, a canteen or sensor name, a note) may begin like a
formula; Excel and WPS would run it when the file is opened, and openpyxl itself stores a
string beginning with ``=`` as a formula. Every export cell goes through :func:`defuse`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def defuse(value: object) -> object:
    """Text that begins like a formula, quoted with ``'``; control characters an XLSX cell
    cannot hold (one imported ``白\x01菜`` made every ticket export of its region a 500)
    as U+FFFD; anything else unchanged."""
    if isinstance(value, str):
        value = ILLEGAL_CHARACTERS_RE.sub("\ufffd", value)
        if value[:1] in FORMULA_STARTS:
            return "'" + value
    return value


def table_csv(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """CSV text, header row first, CRLF line ends (the caller prepends a BOM for Excel)."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(header)
    for row in rows:
        w.writerow([defuse(v) for v in row])
    return out.getvalue()


def table_xlsx(sheet: str, header: Sequence[str], rows: Iterable[Sequence[object]]) -> bytes:
    """An XLSX workbook of one sheet: bold frozen header, then the rows (write-only mode)."""
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(sheet)
    ws.freeze_panes = "A2"
    cells = []
    for name in header:
        cell = WriteOnlyCell(ws, value=name)
        cell.font = Font(bold=True)
        cells.append(cell)
    ws.append(cells)
    for row in rows:
        ws.append([defuse(v) for v in row])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
