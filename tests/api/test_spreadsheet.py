"""Exports handed to spreadsheets never carry a live formula from text a person typed."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

from openpyxl import load_workbook

from api.console.ledger_export import tickets_xlsx
from api.schemas import TicketPublic, TicketStatus
from api.services.spreadsheet import table_csv, table_xlsx

HOSTILE = ['=HYPERLINK("http://x")', "+1", "-2", "@SUM(A1)", "plain", 3.5]


def test_table_csv_and_xlsx_quote_formula_text_and_keep_the_rest() -> None:
    rows = list(csv.reader(io.StringIO(table_csv(["a"] * 6, [HOSTILE]))))
    assert rows[1] == ['\'=HYPERLINK("http://x")', "'+1", "'-2", "'@SUM(A1)", "plain", "3.5"]
    ws = load_workbook(io.BytesIO(table_xlsx("表", ["a"] * 6, [HOSTILE]))).worksheets[0]
    assert ws.title == "表"
    assert ws.freeze_panes == "A2"
    cells = [c for c in next(ws.iter_rows(min_row=2, max_row=2))]
    assert [c.data_type for c in cells[:5]] == ["s"] * 5  # no formula cell
    assert [c.value for c in cells] == ["'=HYPERLINK(\"http://x\")", "'+1", "'-2", "'@SUM(A1)",
                                        "plain", 3.5]  # fmt: skip


def test_ticket_ledger_xlsx_stores_a_formula_looking_title_as_text() -> None:
    at = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
    ticket = TicketPublic(
        id=1, ticket_no="ZG-20261201-1", site_id="s1", source="manual", rule="manual",
        subject="s1", tier=2, status=TicketStatus.OPEN, title="=cmd|' /C calc'!A0",
        opened_at=at, due_at=at, acknowledged_at=None, closed_at=None, escalation_level=0,
        occurrences=1, last_occurrence_at=at, overdue=False, rectified_at=None,
        rejected_at=None, reopened_count=0, close_proposed_at=None, verified_at=None, card=None,
    )  # fmt: skip
    ws = load_workbook(io.BytesIO(tickets_xlsx([ticket], {"s1": "一小"}))).worksheets[0]
    title = [c for c in next(ws.iter_rows(min_row=2, max_row=2)) if "calc" in str(c.value)]
    assert len(title) == 1
    assert title[0].data_type == "s"
    assert title[0].value == "'=cmd|' /C calc'!A0"


def test_control_characters_do_not_break_an_xlsx_export() -> None:
    """One imported product name with a control character (白\\x01菜) made every ticket XLSX of
    its region a 500: openpyxl refuses such characters in a cell."""
    ws = load_workbook(
        io.BytesIO(table_xlsx("t", ["a", "b"], [["白\x01菜", "=\x02x"]]))
    ).worksheets[0]
    cells = [c.value for c in next(ws.iter_rows(min_row=2, max_row=2))]
    assert cells == ["白\ufffd菜", "'=\ufffdx"]
