"""包保 supervision: cadres' visits, the region's visit frequency, and coverage with exports.

A cadre signs in as a regulator of their region (with their person id); admins and
regulators record visits to the sites of their region, every role reads the visits of
its own sites (an officer: their canteen's), and only admins and regulators see the
coverage figures and set a region's frequency. A device token is refused (403) like
everywhere outside its allow-list.
"""

from __future__ import annotations

import logging
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from api.auth.resolve import region_tree
from api.auth.scope import Principal, Role, SiteScope
from api.deps import ConnDep, CurrentUser, ScopeDep, not_found, require_role
from api.input_types import IsoDate
from api.queries.coverage import (
    CoveragePublic,
    coverage,
    coverage_csv,
    coverage_xlsx,
)
from api.services.duty_deadlines import DutySettings
from api.services.spreadsheet import XLSX_MEDIA_TYPE
from api.services.supervision import (
    ChecklistPublic,
    FrequencyIn,
    FrequencyPublic,
    SupervisionSettings,
    VisitIn,
    VisitPublic,
    default_checklist,
    get_visit,
    list_visits,
    record_visit,
    set_frequency,
)
from bkcommon.localtime import local_today
from bkcommon.timeutil import utcnow

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/supervision", tags=["supervision"])


Cadre = Annotated[Principal, Depends(require_role(Role.ADMIN, Role.REGULATOR))]
Lang = Literal["zh-CN", "en"]
OnQ = Annotated[
    IsoDate | None,
    Query(description="The day the period ends on (default: today in the region, BK_TIME_ZONE)."),
]


def supervision_settings() -> SupervisionSettings:
    """Supervision defaults from the environment (``BK_SUPERVISION_*``)."""
    return SupervisionSettings()


SettingsDep = Annotated[SupervisionSettings, Depends(supervision_settings)]


def _today() -> date:
    return local_today()


@router.post(
    "/visits",
    response_model=VisitPublic,
    status_code=201,
    responses={
        **not_found("site"),
        200: {"model": VisitPublic, "description": "Recorded before: nothing changed."},
    },
)
def post_visit(  # noqa: PLR0917 - FastAPI dependencies
    conn: ConnDep,
    scope: ScopeDep,
    user: Cadre,
    settings: SettingsDep,
    body: VisitIn,
    response: Response,
) -> VisitPublic:
    """Record a supervision visit; every checklist item answered "no" opens a ticket.

    201 when stored; 200 with the stored visit when this site's visit at the same time
    was recorded before (a retry changes nothing).
    """
    visit_id, created = record_visit(
        conn, data=body, scope=scope, user=user, settings=settings, now=utcnow()
    )
    if not created:
        response.status_code = 200
    found = get_visit(conn, visit_id=visit_id, scope=scope)
    assert found is not None
    return found


@router.get("/checklist", response_model=ChecklistPublic)
def get_checklist(user: CurrentUser) -> ChecklistPublic:
    """The default visit checklist (items in Chinese and English) and the rule it follows."""
    return default_checklist()


@router.get("/visits", response_model=list[VisitPublic])
def get_visits(
    *,
    conn: ConnDep,
    scope: ScopeDep,
    site_id: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[VisitPublic]:
    """Supervision visits to your sites, newest first, with the tickets their findings opened."""
    return list_visits(conn, scope=scope, site_id=site_id, limit=limit, offset=offset)


@router.put(
    "/frequency",
    response_model=FrequencyPublic,
    responses=not_found("region"),
)
def put_frequency(conn: ConnDep, user: Cadre, body: FrequencyIn) -> FrequencyPublic:
    """Set how often each business of a region (and the regions under it) is due a visit.

    A regulator sets it for their region and the regions below; the nearest region up
    the tree with a frequency wins, else the default (``BK_SUPERVISION_PERIOD_DAYS``).
    """
    allowed = None
    if user.role is Role.REGULATOR:
        allowed = frozenset(region_tree(conn, user.region_id))  # what they may configure
    return set_frequency(conn, data=body, user=user, scope_regions=allowed)


def _coverage(
    conn: Any, scope: SiteScope, on: date | None, settings: SupervisionSettings
) -> CoveragePublic:
    """Coverage on ``on`` (default today), with the food samples' deadline of the duties."""
    grace = DutySettings().sample_grace
    return coverage(conn, scope=scope, on=on or _today(), settings=settings, sample_grace=grace)


@router.get("/coverage", response_model=CoveragePublic)
def get_coverage(
    conn: ConnDep, scope: ScopeDep, user: Cadre, settings: SettingsDep, on: OnQ = None
) -> CoveragePublic:
    """Coverage of your region: businesses with a director, an officer and a cadre; visits
    done against due in each one's period; daily checks due and done on the day."""
    return _coverage(conn, scope, on, settings)


_FILE: dict[int | str, dict[str, Any]] = {200: {"description": "The coverage file."}}


@router.get("/coverage.csv", response_class=Response, responses=_FILE)
def get_coverage_csv(  # noqa: PLR0917 - FastAPI dependencies
    conn: ConnDep,
    scope: ScopeDep,
    user: Cadre,
    settings: SettingsDep,
    on: OnQ = None,
    lang: Lang = "zh-CN",
) -> Response:
    """Coverage of your region as CSV (UTF-8 with BOM), one row per business."""
    cov = _coverage(conn, scope, on, settings)
    body = "\ufeff" + coverage_csv(cov, lang=lang)
    logger.info("coverage exported as CSV by %s (%d sites)", user.username, len(cov.sites))
    return Response(body, media_type="text/csv; charset=utf-8", headers=_headers("csv"))


@router.get("/coverage.xlsx", response_class=Response, responses=_FILE)
def get_coverage_xlsx(  # noqa: PLR0917 - FastAPI dependencies
    conn: ConnDep,
    scope: ScopeDep,
    user: Cadre,
    settings: SettingsDep,
    on: OnQ = None,
    lang: Lang = "zh-CN",
) -> Response:
    """Coverage of your region as an XLSX workbook, one row per business."""
    cov = _coverage(conn, scope, on, settings)
    data = coverage_xlsx(cov, lang=lang)
    logger.info("coverage exported as XLSX by %s (%d sites)", user.username, len(cov.sites))
    return Response(data, media_type=XLSX_MEDIA_TYPE, headers=_headers("xlsx"))


def _headers(fmt: str) -> dict[str, str]:
    return {
        "Content-Disposition": f'attachment; filename="coverage.{fmt}"',
        "Cache-Control": "no-store",
    }
