"""The disinfection ledger (消毒记录): cycles, judged meal windows, CSV and XLSX exports.

Every list is restricted to your sites; asking for a site outside them answers 404, as
for any other resource you may not see.
"""

from __future__ import annotations

import logging
from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Response

from api.deps import ConnDep, ScopeDep
from api.input_types import IsoDate
from api.queries.disinfection import (
    LedgerFilter,
    iter_cycles,
    list_checks,
    list_cycles,
    site_visible,
)
from api.routes.downloads import spooled_download
from api.schemas import ErrorPublic
from api.schemas_disinfection import ChecksPublic, CyclesPublic, Outcome, Verdict
from api.services.disinfection_export import write_cycles
from api.services.spreadsheet import XLSX_MEDIA_TYPE
from bkcommon.localtime import region_zone_name

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/disinfection", tags=["disinfection"])

EXPORT_MAX_ROWS = 100_000

_ERRORS: dict[int | str, dict[str, object]] = {
    404: {"model": ErrorPublic, "description": "No such site, or it is outside your sites."},
    422: {"model": ErrorPublic, "description": "A bad filter (the field is named)."},
}

SiteQ = Annotated[str | None, Query(min_length=1, max_length=64)]
SensorQ = Annotated[str | None, Query(min_length=1, max_length=64)]
DateFromQ = Annotated[IsoDate | None, Query(description="First local date, included.")]
DateToQ = Annotated[IsoDate | None, Query(description="Last local date, included.")]
Lang = Literal["zh-CN", "en"]


def _filter(
    conn: ConnDep,
    scope: ScopeDep,
    *,
    site_id: str | None,
    sensor_id: str | None,
    date_from: date | None,
    date_to: date | None,
    verdict: Verdict | None = None,
) -> LedgerFilter:
    """Check the filter: the dates in order, the site one of yours."""
    if date_from is not None and date_to is not None and date_from > date_to:
        raise HTTPException(status_code=422, detail="query.date_from: must not be after date_to")
    if site_id is not None and not site_visible(conn=conn, scope=scope, site_id=site_id):
        raise HTTPException(status_code=404, detail=f"site {site_id!r} not found")
    return LedgerFilter(site_id, sensor_id, date_from, date_to, verdict)


@router.get("/cycles", response_model=CyclesPublic, responses=_ERRORS)
def read_cycles(
    *,
    conn: ConnDep,
    scope: ScopeDep,
    site_id: SiteQ = None,
    sensor_id: SensorQ = None,
    date_from: DateFromQ = None,
    date_to: DateToQ = None,
    verdict: Verdict | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> CyclesPublic:
    """Disinfection cycles (消毒记录), newest first: start, end, peak, hold, duration, verdict.

    Dates are the site's local dates. Only cycles of your sites are listed.
    """
    filt = _filter(
        conn,
        scope,
        site_id=site_id,
        sensor_id=sensor_id,
        date_from=date_from,
        date_to=date_to,
        verdict=verdict,
    )
    return list_cycles(conn=conn, scope=scope, filt=filt, limit=limit, offset=offset)


@router.get("/checks", response_model=ChecksPublic, responses=_ERRORS)
def read_checks(
    *,
    conn: ConnDep,
    scope: ScopeDep,
    site_id: SiteQ = None,
    sensor_id: SensorQ = None,
    date_from: DateFromQ = None,
    date_to: DateToQ = None,
    outcome: Outcome | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> ChecksPublic:
    """Each cabinet's window after each meal as judged when it closed: done, missed or failed,
    with the cycle that decided it and the ticket a missed or failed window opened."""
    filt = _filter(
        conn,
        scope,
        site_id=site_id,
        sensor_id=sensor_id,
        date_from=date_from,
        date_to=date_to,
    )
    return list_checks(
        conn=conn, scope=scope, filt=filt, outcome=outcome, limit=limit, offset=offset
    )


_FILE_ERRORS: dict[int | str, dict[str, object]] = {
    **_ERRORS,
    200: {"description": "The ledger file."},
}


def _export(
    conn: ConnDep, scope: ScopeDep, filt: LedgerFilter, fmt: Literal["csv", "xlsx"], lang: Lang
) -> Response:
    """The ledger file of ``filt``: per site and day, local times, only your sites."""
    # a site's day is counted in its meal schedule's zone: its times are shown in it too
    zones = {
        str(r[0]): str(r[1])
        for r in conn.execute("SELECT site_id, timezone FROM meal_schedules").fetchall()
    }
    tz = region_zone_name()
    rows = iter_cycles(conn=conn, scope=scope, filt=filt, max_rows=EXPORT_MAX_ROWS)
    logger.info("disinfection ledger exported as %s", fmt.upper())
    return spooled_download(
        lambda out: write_cycles(out, fmt, rows, lang=lang, time_zone=tz, site_zones=zones),
        filename=f"disinfection.{fmt}",
        media_type="text/csv; charset=utf-8" if fmt == "csv" else XLSX_MEDIA_TYPE,
        headers={"Cache-Control": "no-store"},
    )


@router.get("/cycles.csv", response_class=Response, responses=_FILE_ERRORS)
def export_cycles_csv(
    *,
    conn: ConnDep,
    scope: ScopeDep,
    site_id: SiteQ = None,
    sensor_id: SensorQ = None,
    date_from: DateFromQ = None,
    date_to: DateToQ = None,
    verdict: Verdict | None = None,
    lang: Lang = "zh-CN",
) -> Response:
    """The disinfection ledger (消毒记录) of the filter as CSV (UTF-8 with BOM), per site and
    day, local times (the site's meal-schedule zone, else BK_TIME_ZONE), only your sites; at
    most 100,000 cycles."""
    filt = _filter(
        conn,
        scope,
        site_id=site_id,
        sensor_id=sensor_id,
        date_from=date_from,
        date_to=date_to,
        verdict=verdict,
    )
    return _export(conn, scope, filt, "csv", lang)


@router.get("/cycles.xlsx", response_class=Response, responses=_FILE_ERRORS)
def export_cycles_xlsx(
    *,
    conn: ConnDep,
    scope: ScopeDep,
    site_id: SiteQ = None,
    sensor_id: SensorQ = None,
    date_from: DateFromQ = None,
    date_to: DateToQ = None,
    verdict: Verdict | None = None,
    lang: Lang = "zh-CN",
) -> Response:
    """The disinfection ledger (消毒记录) of the filter as an XLSX workbook, per site and day,
    local times (the site's meal-schedule zone, else BK_TIME_ZONE), only your sites; at most
    100,000 cycles."""
    filt = _filter(
        conn,
        scope,
        site_id=site_id,
        sensor_id=sensor_id,
        date_from=date_from,
        date_to=date_to,
        verdict=verdict,
    )
    return _export(conn, scope, filt, "xlsx", lang)
