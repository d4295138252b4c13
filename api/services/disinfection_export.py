"""The disinfection ledger (消毒记录) as CSV and XLSX, filed with the other ledgers.

Columns are per site and day, one row per cycle, with Chinese (or English) headers and
local times of the site (its meal schedule's zone, the one its day is counted in; else the
region's), like the rectification ledger's XLSX export.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import IO, Literal
from zoneinfo import ZoneInfo

from api.schemas_disinfection import CyclePublic
from api.services.spreadsheet import write_table_csv, write_table_xlsx

Lang = Literal["zh-CN", "en"]

COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("site_name", "单位", "Site"),
    ("day", "日期", "Date"),
    ("sensor_name", "消毒设备", "Cabinet"),
    ("cabinet_type", "消毒方式", "Type"),
    ("started_at", "开始时间", "Start"),
    ("ended_at", "结束时间", "End"),
    ("duration_min", "时长(分钟)", "Duration (min)"),
    ("peak_c", "最高温度(℃)", "Peak (°C)"),
    ("held_min", "达标保持(分钟)", "Held (min)"),
    ("verdict", "结果", "Verdict"),
    ("required", "要求", "Required"),
    ("on_min", "通电时长(分钟)", "Powered (min)"),
    ("judged_by", "判定依据", "Judged by"),
)

VERDICT_WORDS = {
    "valid": ("合格", "valid"),
    "too_cool": ("温度不足", "too cool"),
    "too_short": ("时间不足", "too short"),
}
JUDGED_WORDS = {
    "temperature": ("温度", "temperature"),
    "power_temperature": ("通电与温度", "power and temperature"),
    "power": ("仅通电(无温度)", "power only (no temperature)"),
}
TYPE_WORDS = {
    "steam": ("蒸汽", "steam"),
    "boiling": ("煮沸", "boiling"),
    "infrared": ("红外线", "infrared"),
    "dishwasher": ("洗碗机", "dishwasher"),
}


def row_values(c: CyclePublic, lang: Lang, zone: ZoneInfo) -> list[object]:
    """One ledger row of ``c``: local times, minutes, words."""
    i = 1 if lang == "en" else 0
    ctype = c.cabinet_type or ""
    return [
        c.site_name,
        c.day.isoformat(),
        c.sensor_name,
        TYPE_WORDS.get(ctype, (ctype, ctype))[i],
        c.started_at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S"),
        c.ended_at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S"),
        round(c.duration_s / 60, 1),
        "" if c.peak_c is None else round(c.peak_c, 1),
        round(c.held_s / 60, 1),
        VERDICT_WORDS[c.verdict.value][i],
        f"≥{c.min_temp_c:g} ℃ × {c.min_hold_s} s",
        "" if c.on_s is None else round(c.on_s / 60, 1),
        JUDGED_WORDS[c.judged_by][i],
    ]


def _rows(
    cycles: Iterable[CyclePublic], lang: Lang, time_zone: str, site_zones: Mapping[str, str]
) -> Iterable[list[object]]:
    """Each cycle's row, its times in its site's zone (the zone its day is counted in: with
    the region's zone a site on another one had rows dated one day and started the next)."""
    zones = {name: ZoneInfo(name) for name in {time_zone, *site_zones.values()}}
    for c in cycles:
        yield row_values(c, lang, zones[site_zones.get(c.site_id, time_zone)])


def write_cycles(
    out: IO[bytes],
    fmt: Literal["csv", "xlsx"],
    cycles: Iterable[CyclePublic],
    *,
    lang: Lang,
    time_zone: str,
    site_zones: Mapping[str, str] | None = None,
) -> None:
    """The ledger into ``out`` as the cycles are read: CSV (with a BOM) or XLSX."""
    header = [en if lang == "en" else zh for _k, zh, en in COLUMNS]
    rows = _rows(cycles, lang, time_zone, site_zones or {})
    if fmt == "csv":
        write_table_csv(out, header, rows)
    else:
        write_table_xlsx(out, "消毒记录" if lang != "en" else "Disinfection ledger", header, rows)
