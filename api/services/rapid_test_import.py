"""CSV import of a rapid-test instrument's export: valid rows stored, each bad row named.

Instruments export one row per sample and item, usually in GB 18030 with Chinese headers;
both the English column names and the common Chinese ones are understood (``COLUMNS``).
A row is checked like the JSON API (``RapidTestIn``) and stored on its own
(``record_test``: the sample, its finding and flags, or nothing); a bad row is reported as
row number (1 = the first data row after the header) + field + reason and changes nothing.
Times without an offset are the region's local time (``BK_TIME_ZONE``, China Standard Time,
UTC+8, by default), as instruments write them.
"""

from __future__ import annotations

import codecs
import csv
import io
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from pydantic import ValidationError

from api.auth.scope import SiteScope
from api.services.rapid_tests import (
    ITEM_LABELS,
    RapidTestIn,
    RapidTestSettings,
    record_test,
)
from bkcommon.errors import RequestError
from bkcommon.localtime import region_zone

Conn = psycopg.Connection[Any]

MAX_ROWS = 5000

COLUMNS: dict[str, tuple[str, ...]] = {
    "site_id": ("site_id", "单位编号", "食堂编号"),
    "sample_no": ("sample_no", "样品编号", "编号"),
    "purchase_id": ("purchase_id", "进货记录"),
    "product": ("product", "样品名称", "名称"),
    "supplier_name": ("supplier_name", "供应商", "供货单位"),
    "supplier_licence": ("supplier_licence", "许可证号", "供应商许可证号"),
    "batch_no": ("batch_no", "批次", "批号"),
    "item": ("item", "检测项目", "项目"),
    "method": ("method", "检测方法", "方法"),
    "result": ("result", "检测结果", "结论", "结果"),
    "value": ("value", "检测值", "抑制率"),
    "limit": ("limit", "限值", "标准值"),
    "unit": ("unit", "单位"),
    "tester": ("tester", "检测人", "检测员"),
    "tested_at": ("tested_at", "检测时间", "时间"),
}
"""Field → accepted header names (case-insensitive, surrounding spaces ignored)."""

REQUIRED = ("site_id", "sample_no", "product", "item", "method", "result", "tester", "tested_at")

_RESULTS = {
    "pass": "pass", "合格": "pass", "阴性": "pass", "negative": "pass", "-": "pass",
    "fail": "fail", "不合格": "fail", "阳性": "fail", "positive": "fail", "+": "fail",
}  # fmt: skip
_ITEMS = {zh: item for item, (zh, _en) in ITEM_LABELS.items()} | {
    "农药残留": "pesticide_enzyme",
    "有机磷和氨基甲酸酯类农药": "pesticide_enzyme",
    "瘦肉精": "clenbuterol",
    "盐酸克伦特罗": "clenbuterol",
}


class CsvImportError(RequestError):
    """The file as a whole cannot be read (422): encoding, header, too many rows."""

    status_code = 422


@dataclass(frozen=True, slots=True)
class RowError:
    """Why one row was not imported."""

    row: int
    field: str
    reason: str


@dataclass
class ImportReport:
    """What an import did."""

    imported: int = 0
    duplicates: int = 0
    failed: int = 0
    test_ids: list[int] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)


def decode(raw: bytes) -> str:
    """UTF-8 (with or without a BOM), else GB 18030 (a superset of GBK and GB 2312)."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:  # a BOM before GB 18030 text: an editor's doing, the text is still GB 18030
            return raw.removeprefix(codecs.BOM_UTF8).decode("gb18030")
        except UnicodeDecodeError as exc:
            raise CsvImportError("file: neither UTF-8 nor GB 18030 text") from exc


def _header_map(header: list[str]) -> dict[str, int]:
    """Field → column index; refuses a missing required column or a doubled one."""
    by_name = {alias.lower(): f for f, aliases in COLUMNS.items() for alias in aliases}
    found: dict[str, int] = {}
    for i, name in enumerate(header):
        f = by_name.get(name.strip().lower())
        if f is None:
            continue
        if f in found:
            raise CsvImportError(f"header: column {name.strip()!r} repeats {f}")
        found[f] = i
    missing = [f for f in REQUIRED if f not in found]
    if missing:
        raise CsvImportError(f"header: missing column(s) {', '.join(missing)}")
    return found


def _time(text: str) -> datetime:
    """ISO 8601 / ``YYYY-MM-DD HH:MM[:SS]`` / ``YYYY/MM/DD HH:MM[:SS]``; naive means the
    region's local time (``BK_TIME_ZONE``)."""
    value = datetime.fromisoformat(text.strip().replace("/", "-"))
    return value if value.tzinfo is not None else value.replace(tzinfo=region_zone())


def _row_fields(
    cells: list[str], columns: dict[str, int]
) -> tuple[dict[str, Any], RowError | None]:
    """The row as ``RapidTestIn`` input, or the first field that cannot be read."""
    out: dict[str, Any] = {}
    for f, i in columns.items():
        text = cells[i].strip() if i < len(cells) else ""
        if text == "":
            continue
        if f == "result":
            if text.lower() not in _RESULTS:
                return out, RowError(0, f, f"{text!r} is not pass/fail (合格/不合格, 阴性/阳性)")
            out[f] = _RESULTS[text.lower()]
        elif f == "item":
            out[f] = _ITEMS.get(text, text)
        elif f == "tested_at":
            try:
                out[f] = _time(text)
            except ValueError:
                return out, RowError(0, f, f"{text!r} is not a date and time")
        else:
            out[f] = text
    return out, None


def import_csv(
    conn: Conn,
    *,
    raw: bytes,
    scope: SiteScope,
    actor: str,
    now: datetime,
    settings: RapidTestSettings,
) -> ImportReport:
    """Import every valid row; report each refused one with its row number, field and reason."""
    text = decode(raw)
    header_line = text.partition("\n")[0]
    delimiter = max(",\t;", key=header_line.count)  # instruments write commas, tabs or semicolons
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        rows = list(reader)
    except csv.Error as exc:  # a field past the csv module's limit: an unclosed quote
        raise CsvImportError(
            f"file: line {reader.line_num}: {exc} (an unclosed quote swallows the rest?)"
        ) from None
    if not rows:
        raise CsvImportError("file: empty; the first line must be the header")
    columns = _header_map(rows[0])
    width = len(rows[0])
    seen: dict[tuple[str, str, str], int] = {}  # (site, sample, item) → its first row
    body = [r for r in rows[1:] if any(c.strip() for c in r)]
    if len(body) > MAX_ROWS:
        raise CsvImportError(f"file: {len(body)} rows; at most {MAX_ROWS} per import")
    report = ImportReport()
    for n, cells in enumerate(rows[1:], start=1):
        if not any(c.strip() for c in cells):
            continue
        if any(c.strip() for c in cells[width:]):  # read by position, the rest would shift
            report.errors.append(
                RowError(
                    n,
                    "row",
                    f"{len(cells)} cells but {width} columns in the header "
                    "(a decimal comma, or a comma not in quotes?)",
                )
            )
            continue
        fields, bad = _row_fields(cells, columns)
        if bad is not None:
            report.errors.append(RowError(n, bad.field, bad.reason))
            continue
        try:
            data = RapidTestIn.model_validate(fields)
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(p) for p in first["loc"])
            msg = str(first["msg"]).removeprefix("Value error, ")
            if not loc:  # a check across fields names its field first: "field: reason"
                loc, _, msg = msg.partition(": ")
            report.errors.append(RowError(n, loc, msg))
            continue
        key = (data.site_id, data.sample_no, str(data.item))
        if key in seen:  # which result won depended on the order of the rows
            report.errors.append(
                RowError(n, "sample_no", f"{data.sample_no} {data.item} repeats row {seen[key]}")
            )
            continue
        seen[key] = n
        try:
            test_id, created = record_test(
                conn, data=data, scope=scope, actor=actor, now=now, settings=settings,
                source="csv",
            )  # fmt: skip
        except RequestError as exc:
            name, _, reason = str(exc).partition(": ")
            report.errors.append(RowError(n, name if reason else "row", reason or str(exc)))
            continue
        except psycopg.DataError as exc:  # e.g. a NUL character: the database cannot store it
            report.errors.append(RowError(n, "row", f"cannot be stored: {exc}"))
            continue
        if created:
            report.imported += 1
            report.test_ids.append(test_id)
            continue
        report.duplicates += 1
        stored = conn.execute("SELECT result FROM rapid_tests WHERE id = %s", (test_id,)).fetchone()
        if stored is not None and stored[0] != data.result:
            # a stored pass "corrected" to a fail would otherwise vanish without a word
            report.errors.append(
                RowError(
                    n,
                    "result",
                    f"recorded before as {stored[0]} (test {test_id}); not changed here "
                    "(a correction is made on the test itself)",
                )
            )
    report.failed = len(report.errors)
    return report
