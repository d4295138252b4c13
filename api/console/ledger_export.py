"""The rectification ledger (整改台账) as an XLSX workbook people file and print.

Unlike the CSV (machine-readable: codes, ISO times in UTC), every cell here is what a
person reads: Chinese headers (English with ``lang=en``), rule, tier, source and status
as words, times as real spreadsheet dates in the region's time zone, overdue rows
marked. The header row is frozen and the sheet prints landscape, fitted to the page
width with the header repeated on every page.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from datetime import datetime
from typing import IO, Literal
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import Cell
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from api.schemas import TicketPublic
from api.services.labels import (
    SOURCE_LABELS,
    STATUS_LABELS,
    TIER_LABELS,
    rule_label,
    title_in,
)
from api.services.spreadsheet import defuse
from bkcommon.localtime import DEFAULT_TIME_ZONE

Lang = Literal["zh-CN", "en"]


COLUMNS: tuple[tuple[str, str, str, int], ...] = (
    # key, zh header, en header, width
    ("ticket_no", "整改单编号", "Ticket no.", 18),
    ("site_name", "食堂", "Canteen", 24),
    ("title", "问题", "Problem", 40),
    ("rule", "类别", "Kind", 16),
    ("tier", "级别", "Tier", 16),
    ("source", "来源", "Source", 12),
    ("status", "状态", "Status", 10),
    ("opened_at", "开单时间", "Opened", 17),
    ("due_at", "整改期限", "Due", 17),
    ("acknowledged_at", "接收时间", "Acknowledged", 17),
    ("rectified_at", "整改提交时间", "Rectified", 17),
    ("verified_at", "验收时间", "Verified", 17),
    ("closed_at", "关闭时间", "Closed", 17),
    ("escalation_level", "升级级别", "Escalation", 9),
    ("occurrences", "发生次数", "Occurrences", 9),
    ("overdue", "是否逾期", "Overdue", 9),
)
_TIMES = frozenset(
    {"opened_at", "due_at", "acknowledged_at", "rectified_at", "verified_at", "closed_at"}
)
_TIME_FORMAT = "yyyy-mm-dd hh:mm"
_OVERDUE_FILL = PatternFill("solid", fgColor="FDE8E7")
_HEADER_FILL = PatternFill("solid", fgColor="EEF1F4")


def _word(pair: tuple[str, str] | None, lang: Lang, fallback: str) -> str:
    if pair is None:
        return fallback
    return pair[1] if lang == "en" else pair[0]


def local_naive(value: datetime | None, zone: ZoneInfo) -> datetime | None:
    """``value`` in ``zone`` without tzinfo (spreadsheets store wall-clock times).

    Example:
        >>> from datetime import UTC
        >>> local_naive(datetime(2026, 1, 1, 16, 30, tzinfo=UTC), ZoneInfo("Asia/Shanghai"))
        datetime.datetime(2026, 1, 2, 0, 30)
    """
    if value is None:
        return None
    return value.astimezone(zone).replace(tzinfo=None)


def row_values(
    t: TicketPublic, site_names: dict[str, str], lang: Lang, zone: ZoneInfo
) -> list[object]:
    """The cells of one ticket, in ``COLUMNS`` order, as a person reads them."""
    zh_en = 1 if lang == "en" else 0
    values: dict[str, object] = {
        "ticket_no": t.ticket_no,
        "site_name": site_names.get(t.site_id, t.site_id),
        "title": title_in(t.title, t.rule, lang),
        "rule": rule_label(t.rule)[zh_en],
        "tier": f"{t.tier} · {_word(TIER_LABELS.get(t.tier), lang, str(t.tier))}",
        "source": _word(SOURCE_LABELS.get(t.source), lang, t.source),
        "status": _word(STATUS_LABELS.get(t.status.value), lang, t.status.value),
        "escalation_level": t.escalation_level,
        "occurrences": t.occurrences,
        "overdue": ("yes" if t.overdue else "no")
        if lang == "en"
        else ("是" if t.overdue else "否"),
    }
    for key in _TIMES:
        values[key] = local_naive(getattr(t, key), zone)
    return [values[key] for key, *_ in COLUMNS]


def _cell(ws: Worksheet, value: object, *, time: bool, overdue: bool) -> Cell:
    cell = WriteOnlyCell(ws, value=defuse(value))  # type: ignore[arg-type]
    if time:
        cell.number_format = _TIME_FORMAT
    if overdue:
        cell.fill = _OVERDUE_FILL
    return cell


def tickets_xlsx(
    tickets: Iterable[TicketPublic],
    site_names: dict[str, str],
    *,
    lang: Lang = "zh-CN",
    time_zone: str = DEFAULT_TIME_ZONE,
    title: str | None = None,
) -> bytes:
    """``write_tickets_xlsx`` into memory (a few tickets: tests, small exports)."""
    out = io.BytesIO()
    write_tickets_xlsx(out, tickets, site_names, lang=lang, time_zone=time_zone, title=title)
    return out.getvalue()


def write_tickets_xlsx(
    out: IO[bytes],
    tickets: Iterable[TicketPublic],
    site_names: dict[str, str],
    *,
    lang: Lang = "zh-CN",
    time_zone: str = DEFAULT_TIME_ZONE,
    title: str | None = None,
) -> None:
    """The ledger workbook into ``out``: one sheet, a frozen header, one row per ticket
    (write-only mode: rows are not kept in memory)."""
    zone = ZoneInfo(time_zone)
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(title or ("整改台账" if lang != "en" else "Rectification ledger"))
    for index, (_key, _zh, _en, width) in enumerate(COLUMNS, start=1):
        ws.column_dimensions[get_column_letter(index)].width = width
    ws.freeze_panes = "A2"
    ws.print_title_rows = "1:1"
    ws.page_setup.orientation = "landscape"
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    header = []
    for _key, zh, en, _width in COLUMNS:
        cell = WriteOnlyCell(ws, value=en if lang == "en" else zh)
        cell.font = Font(bold=True)
        cell.fill = _HEADER_FILL
        cell.alignment = Alignment(horizontal="center", vertical="center")
        header.append(cell)
    ws.append(header)
    for t in tickets:
        values = row_values(t, site_names, lang, zone)
        ws.append(
            [
                _cell(ws, v, time=key in _TIMES, overdue=t.overdue)
                for (key, *_), v in zip(COLUMNS, values, strict=True)
            ]
        )
    wb.save(out)
