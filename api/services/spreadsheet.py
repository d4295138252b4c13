"""Tables handed to spreadsheets (CSV and XLSX exports of the ledgers and registers).

Text a person typed (a ticket title, a canteen or sensor name, a note) may begin like a
formula; Excel and WPS would run it when the file is opened, and openpyxl itself stores a
string beginning with ``=`` as a formula. Every export cell goes through :func:`defuse`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import IO, TextIO

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"


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
    _write_csv(out, header, rows)
    return out.getvalue()


def write_table_csv(
    out: IO[bytes], header: Sequence[str], rows: Iterable[Sequence[object]]
) -> None:
    """CSV into ``out`` as the rows come: a BOM (spreadsheet programs then read UTF-8 Chinese
    right), the header row, CRLF line ends; ``out`` stays open."""
    text = io.TextIOWrapper(out, encoding="utf-8", newline="")
    try:
        text.write("\ufeff")
        _write_csv(text, header, rows)
        text.flush()
    finally:
        text.detach()


def _write_csv(out: TextIO, header: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(header)
    for row in rows:
        w.writerow([defuse(v) for v in row])


def table_xlsx(sheet: str, header: Sequence[str], rows: Iterable[Sequence[object]]) -> bytes:
    """An XLSX workbook of one sheet: bold frozen header, then the rows (write-only mode)."""
    out = io.BytesIO()
    write_table_xlsx(out, sheet, header, rows)
    return out.getvalue()


def write_table_xlsx(
    out: IO[bytes], sheet: str, header: Sequence[str], rows: Iterable[Sequence[object]]
) -> None:
    """``table_xlsx`` into ``out`` (write-only mode: rows are not kept in memory)."""
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
    wb.save(out)
