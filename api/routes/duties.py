"""The officer's and director's duties: daily check, 晨检, 留样 (日管控), 周排查 and 月调度.

Writers (admin, regulator, officer, director) record for the sites in their scope; another
site is 404, as a read of it would be. An insurer reads; a device token is refused (403)
like everywhere outside its allow-list. A site's duty settings are set by an admin, a
regulator or the site's director; a region's own checklist by an admin or a regulator of
that region. The weekly review and the signature of the monthly report are the
director's alone; any writer of the site generates and edits the draft. Every refusal
names the field (``api.services.duties``, ``api.services.duty_reports``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response
from psycopg.types.json import Jsonb
from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.concurrency import run_in_threadpool

from api.auth.resolve import region_tree
from api.auth.scope import Principal, Role
from api.deps import (
    ConnDep,
    CurrentUser,
    ScopeDep,
    SettingsDep,
    WriterUser,
    not_found,
    require_role,
)
from api.input_types import IsoDate
from api.queries.duties import DutyTodayPublic, duties_today
from api.routes.inspections import StoreDep
from api.routes.raw_photo import (
    PHOTO_REFUSALS,
    raw_photo_body,
    read_raw_photo,
    stored_photo_response,
)
from api.schemas import ErrorPublic
from api.services.duties import (
    BusinessType,
    DailyCheckIn,
    DailyCheckPublic,
    DutySiteIn,
    DutySitePublic,
    china_today,
    get_daily_check,
    get_duty_site,
    list_daily_checks,
    photo_media_type,
    record_daily_check,
    set_duty_site,
    store_photo,
)
from api.services.duty_deadlines import DutySettings
from api.services.duty_reports import (
    MONTH_PATTERN,
    MonthlyReportEditIn,
    MonthlyReportIn,
    MonthlyReportPublic,
    WeeklyReviewIn,
    WeeklyReviewPublic,
    edit_report,
    generate_report,
    get_weekly_review,
    list_reports,
    list_weekly_reviews,
    record_weekly_review,
    sign_report,
)
from api.services.duty_templates import (
    DEFAULT_CHECKLISTS,
    DEFAULT_SOURCE,
    Checklist,
    ChecklistItem,
)
from api.services.food_samples import MealSamplesIn, SamplePublic, list_samples, record_samples
from api.services.health_checks import (
    HealthCheckIn,
    StaffCheckPublic,
    list_health_checks,
    record_health_checks,
)
from api.services.sample_deadlines import MealSamplesDue, meals_of_day
from bkcommon.timeutil import utcnow

router = APIRouter(tags=["duties"])

SetterUser = Annotated[Principal, Depends(require_role(Role.ADMIN, Role.REGULATOR, Role.DIRECTOR))]
DirectorUser = Annotated[Principal, Depends(require_role(Role.DIRECTOR))]
InspectorUser = Annotated[Principal, Depends(require_role(Role.ADMIN, Role.REGULATOR))]

_INVALID: dict[int | str, dict[str, Any]] = {
    422: {"model": ErrorPublic, "description": "Invalid input; the message names the field."}
}
_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorPublic, "description": "Recorded already; records are final."}
}
_SITE = not_found("site")


@router.put(
    "/sites/{site_id}/duties",
    response_model=DutySitePublic,
    responses={**_SITE, **_INVALID},
)
def put_duty_site(
    conn: ConnDep, scope: ScopeDep, user: SetterUser, site_id: str, body: DutySiteIn
) -> DutySitePublic:
    """Set the site's business type and the local time its daily check is due by."""
    set_duty_site(conn, site_id=site_id, data=body, scope=scope, actor=user.username, now=utcnow())
    found = get_duty_site(conn, site_id=site_id, scope=scope)
    assert found is not None
    return found


@router.get(
    "/sites/{site_id}/duties",
    response_model=DutySitePublic,
    responses=not_found("site, or it keeps no daily duties"),
)
def get_duties(conn: ConnDep, scope: ScopeDep, site_id: str) -> DutySitePublic:
    """The site's duty settings and the checklist its officer answers (with its source)."""
    found = get_duty_site(conn, site_id=site_id, scope=scope)
    if found is None:
        raise HTTPException(status_code=404, detail=f"site {site_id} keeps no daily duties")
    return found


@router.get("/duties/today", response_model=list[DutyTodayPublic])
def get_duties_today(conn: ConnDep, scope: ScopeDep) -> list[DutyTodayPublic]:
    """Today's daily check (the region's local day) of each of your sites that keeps duties;
    overdue first."""
    now = utcnow()
    grace = DutySettings().sample_grace
    return duties_today(conn, scope=scope, day=china_today(now), now=now, grace=grace)


@router.get("/duties/checklists", response_model=list[Checklist])
def get_default_checklists(_user: CurrentUser) -> list[Checklist]:
    """The default checklist of each business type and where it comes from."""
    return [
        Checklist(business_type=t, region_id=None, source=DEFAULT_SOURCE, items=items)
        for t, items in DEFAULT_CHECKLISTS.items()
    ]


class ChecklistIn(BaseModel):
    """A region's own checklist for one business type."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    region_id: str = Field(min_length=1, max_length=100)
    business_type: BusinessType
    source: str = Field(min_length=1, max_length=500, description="Where the items come from.")
    items: list[ChecklistItem] = Field(min_length=1, max_length=50)

    @model_validator(mode="after")
    def _unique(self) -> ChecklistIn:
        keys = [i.key for i in self.items]
        for i, key in enumerate(keys):
            if key in keys[:i]:
                raise ValueError(f"items.{i}.key: {key!r} appears twice")
        return self


@router.put(
    "/duties/checklists",
    response_model=Checklist,
    responses={
        403: {"model": ErrorPublic, "description": "Outside your region, or your role."},
        **_INVALID,
    },
)
def put_checklist(conn: ConnDep, user: InspectorUser, body: ChecklistIn) -> Checklist:
    """Set a region's own checklist for a business type (its sites and sub-regions use it)."""
    tree = region_tree(conn, user.region_id)
    if conn.execute("SELECT 1 FROM regions WHERE id = %s", (body.region_id,)).fetchone() is None:
        raise HTTPException(status_code=422, detail=f"region_id: no region {body.region_id}")
    if user.role is Role.REGULATOR and body.region_id not in tree:
        raise HTTPException(status_code=403, detail="region_id: outside your region")
    conn.execute(
        """INSERT INTO duty_checklists (region_id, business_type, items, source, updated_by,
                                        updated_at)
           VALUES (%s, %s, %s, %s, %s, %s)
           ON CONFLICT (region_id, business_type) DO UPDATE SET items = EXCLUDED.items,
               source = EXCLUDED.source, updated_by = EXCLUDED.updated_by,
               updated_at = EXCLUDED.updated_at""",
        (
            body.region_id,
            body.business_type,
            Jsonb([i.model_dump() for i in body.items]),
            body.source,
            user.username,
            utcnow(),
        ),
    )
    return Checklist(
        business_type=body.business_type,
        region_id=body.region_id,
        source=body.source,
        items=body.items,
    )


class PhotoStoredPublic(BaseModel):
    """A stored photo: give its hash with the "no" answer it backs."""

    sha256: str


@router.post(
    "/sites/{site_id}/duty-photos",
    response_model=PhotoStoredPublic,
    status_code=201,
    responses={
        **_SITE,
        **PHOTO_REFUSALS,
    },
    openapi_extra=raw_photo_body("A photo backing a 'no' answer (JPEG or PNG)."),
)
async def post_duty_photo(  # noqa: PLR0917 - FastAPI dependencies
    request: Request,
    conn: ConnDep,
    scope: ScopeDep,
    user: WriterUser,
    store: StoreDep,
    settings: SettingsDep,
    site_id: str,
) -> PhotoStoredPublic:
    """Upload a photo through the evidence checks (type, size, bombs); answer with its hash."""
    data = await read_raw_photo(request, settings.max_upload_mb)
    sha = await run_in_threadpool(
        store_photo,
        conn,
        store=store,
        site_id=site_id,
        content=data,
        scope=scope,
        actor=user.username,
        now=utcnow(),
    )
    return PhotoStoredPublic(sha256=sha)


@router.get(
    "/sites/{site_id}/duty-photos/{sha256}",
    response_class=Response,
    responses={
        **not_found("site or photo"),
        200: {"description": "The photo.", "content": {"image/jpeg": {}, "image/png": {}}},
    },
)
def get_duty_photo(
    conn: ConnDep, scope: ScopeDep, store: StoreDep, site_id: str, sha256: str
) -> Response:
    """A photo uploaded for the site's duty records (e.g. the one behind a "no")."""
    media = photo_media_type(conn, site_id=site_id, sha256=sha256, scope=scope)
    data = None if media is None else store.get(sha256)
    if media is None or data is None:
        raise HTTPException(status_code=404, detail=f"site {site_id} has no such photo")
    return stored_photo_response(data, media)


@router.post(
    "/sites/{site_id}/daily-checks",
    response_model=DailyCheckPublic,
    status_code=201,
    responses={**_SITE, **_CONFLICT, **_INVALID},
)
def post_daily_check(
    conn: ConnDep, scope: ScopeDep, user: WriterUser, site_id: str, body: DailyCheckIn
) -> DailyCheckPublic:
    """Record the day's check; each "no" (with its photo) becomes a finding and a ticket."""
    check_id = record_daily_check(
        conn, site_id=site_id, data=body, scope=scope, actor=user.username, now=utcnow()
    )
    return get_daily_check(conn, check_id=check_id)


@router.get("/sites/{site_id}/daily-checks", response_model=list[DailyCheckPublic], responses=_SITE)
def get_daily_checks(
    conn: ConnDep,
    scope: ScopeDep,
    site_id: str,
    since: IsoDate | None = None,
    limit: Annotated[int, Query(ge=1, le=366)] = 31,
) -> list[DailyCheckPublic]:
    """The site's daily checks, newest day first."""
    return list_daily_checks(conn, site_id=site_id, scope=scope, since=since, limit=limit)


@router.post(
    "/sites/{site_id}/health-checks",
    response_model=list[StaffCheckPublic],
    status_code=201,
    responses={**_SITE, **_CONFLICT, **_INVALID},
)
def post_health_checks(
    conn: ConnDep, scope: ScopeDep, user: WriterUser, site_id: str, body: HealthCheckIn
) -> list[StaffCheckPublic]:
    """Record the morning check (晨检); anyone with a symptom is off duty that day."""
    now = utcnow()
    record_health_checks(
        conn, site_id=site_id, data=body, scope=scope, actor=user.username, now=now
    )
    day = body.check_date or china_today(now)
    names = {s.staff_name for s in body.staff}
    found = list_health_checks(conn, site_id=site_id, scope=scope, day=day, off_duty_only=False)
    return [c for c in found if c.staff_name in names]


@router.get(
    "/sites/{site_id}/health-checks", response_model=list[StaffCheckPublic], responses=_SITE
)
def get_health_checks(
    conn: ConnDep,
    scope: ScopeDep,
    site_id: str,
    day: IsoDate | None = None,
    off_duty: bool = False,
) -> list[StaffCheckPublic]:
    """The day's morning checks (default today, the region's local day); ``off_duty`` lists
    only those off."""
    return list_health_checks(
        conn,
        site_id=site_id,
        scope=scope,
        day=day or china_today(utcnow()),
        off_duty_only=off_duty,
    )


@router.post(
    "/sites/{site_id}/food-samples",
    response_model=list[SamplePublic],
    status_code=201,
    responses={**_SITE, **_CONFLICT, **_INVALID},
)
def post_food_samples(
    conn: ConnDep, scope: ScopeDep, user: WriterUser, site_id: str, body: MealSamplesIn
) -> list[SamplePublic]:
    """Record a meal's samples (留样): every dish ≥ 125 g, kept ≥ 48 h."""
    ids = set(
        record_samples(
            conn, site_id=site_id, data=body, scope=scope, actor=user.username, now=utcnow()
        )
    )
    found = list_samples(conn, site_id=site_id, scope=scope, day=body.meal_date, limit=500)
    return [s for s in found if s.id in ids]


@router.get("/sites/{site_id}/food-samples", response_model=list[SamplePublic], responses=_SITE)
def get_food_samples(
    conn: ConnDep,
    scope: ScopeDep,
    site_id: str,
    day: IsoDate | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[SamplePublic]:
    """The site's food samples (of one day when given), newest first."""
    return list_samples(conn, site_id=site_id, scope=scope, day=day, limit=limit)


@router.get("/sites/{site_id}/meals", response_model=list[MealSamplesDue], responses=_SITE)
def get_meals(
    conn: ConnDep, scope: ScopeDep, site_id: str, day: IsoDate | None = None
) -> list[MealSamplesDue]:
    """The day's scheduled meals (default today in the schedule's own zone: China time for
    any schedule kept in it) and whether each has its food samples on record, with the time
    they are due: an overdue meal opens a 未按规定留样 ticket. Empty for a site without a
    meal schedule."""
    return meals_of_day(
        conn,
        site_id=site_id,
        scope=scope,
        day=day,
        now=utcnow(),
        settings=DutySettings(),
    )


@router.post(
    "/sites/{site_id}/weekly-reviews",
    response_model=WeeklyReviewPublic,
    status_code=201,
    responses={**_SITE, **_CONFLICT, **_INVALID},
)
def post_weekly_review(
    conn: ConnDep, scope: ScopeDep, user: DirectorUser, site_id: str, body: WeeklyReviewIn
) -> WeeklyReviewPublic:
    """The director records the week's review (周排查) with the week's figures."""
    review_id = record_weekly_review(
        conn, site_id=site_id, data=body, scope=scope, actor=user.username, now=utcnow()
    )
    return get_weekly_review(conn, review_id=review_id)


@router.get(
    "/sites/{site_id}/weekly-reviews", response_model=list[WeeklyReviewPublic], responses=_SITE
)
def get_weekly_reviews(
    conn: ConnDep,
    scope: ScopeDep,
    site_id: str,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
) -> list[WeeklyReviewPublic]:
    """The site's weekly reviews, newest week first."""
    return list_weekly_reviews(conn, site_id=site_id, scope=scope, limit=limit)


@router.post(
    "/sites/{site_id}/monthly-reports",
    response_model=MonthlyReportPublic,
    responses={**_SITE, **_CONFLICT, **_INVALID},
)
def post_monthly_report(
    conn: ConnDep, scope: ScopeDep, _user: WriterUser, site_id: str, body: MonthlyReportIn
) -> MonthlyReportPublic:
    """Generate the month's report (月调度) from its records, or refresh a draft's figures."""
    return generate_report(conn, site_id=site_id, month=body.month, scope=scope, now=utcnow())


class ReportEditIn(MonthlyReportEditIn):
    """The month and the new text of its draft."""

    month: str = Field(pattern=MONTH_PATTERN, description="YYYY-MM.")


class ReportSignIn(BaseModel):
    """The month whose report the director signs."""

    model_config = ConfigDict(extra="forbid")

    month: str = Field(pattern=MONTH_PATTERN, description="YYYY-MM.")


@router.patch(
    "/sites/{site_id}/monthly-reports",
    response_model=MonthlyReportPublic,
    responses={**not_found("site or report"), **_CONFLICT, **_INVALID},
)
def patch_monthly_report(
    conn: ConnDep, scope: ScopeDep, user: WriterUser, site_id: str, body: ReportEditIn
) -> MonthlyReportPublic:
    """Edit a draft report's text; a signed report is final (409)."""
    return edit_report(
        conn,
        site_id=site_id,
        month=body.month,
        body=body.body,
        scope=scope,
        actor=user.username,
        now=utcnow(),
    )


@router.post(
    "/sites/{site_id}/monthly-reports/sign",
    response_model=MonthlyReportPublic,
    responses={**not_found("site or report"), **_CONFLICT, **_INVALID},
)
def post_sign_report(
    conn: ConnDep, scope: ScopeDep, user: DirectorUser, site_id: str, body: ReportSignIn
) -> MonthlyReportPublic:
    """The director signs the month's report; from then on it cannot change."""
    return sign_report(
        conn, site_id=site_id, month=body.month, scope=scope, actor=user.username, now=utcnow()
    )


@router.get(
    "/sites/{site_id}/monthly-reports", response_model=list[MonthlyReportPublic], responses=_SITE
)
def get_monthly_reports(
    conn: ConnDep,
    scope: ScopeDep,
    site_id: str,
    limit: Annotated[int, Query(ge=1, le=120)] = 12,
) -> list[MonthlyReportPublic]:
    """The site's monthly reports, newest month first."""
    return list_reports(conn, site_id=site_id, scope=scope, limit=limit)
