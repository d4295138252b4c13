"""Capture triage: the review queue, confirm / dismiss, false-alarm rates, VOC export."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import StreamingResponse

from api.deps import ConnDep, ScopeDep, SettingsDep, TicketUser, not_found
from api.input_types import IsoDateTime
from api.routes.downloads import spooled_download
from api.routes.evidence import StoreDep
from api.schemas import ErrorPublic
from api.schemas_loop import (
    DismissIn,
    FalseAlarmRatePublic,
    ReviewPublic,
    ReviewsPublic,
    ReviewStatsPublic,
)
from api.services.reviews import (
    confirm_review,
    dismiss_review,
    export_voc,
    false_alarm_rates,
    get_review,
    list_reviews,
)
from bkcommon.localtime import local_date
from bkcommon.timeutil import to_utc, utcnow

router = APIRouter(prefix="/reviews", tags=["capture triage"])


@router.get("", response_model=ReviewsPublic)
def read_reviews(
    conn: ConnDep,
    scope: ScopeDep,
    status: Literal["pending", "confirmed", "dismissed"] | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> ReviewsPublic:
    """Captures of your sites in the review queue (``status=pending``) or reviewed, oldest first.

    ``count`` is every match; page with ``limit`` and ``offset``.
    """
    rows, total = list_reviews(conn, scope=scope, status=status, limit=limit, offset=offset)
    return ReviewsPublic(data=[ReviewPublic.model_validate(r) for r in rows], count=total)


@router.get("/stats", response_model=ReviewStatsPublic)
def review_stats(conn: ConnDep, scope: ScopeDep) -> ReviewStatsPublic:
    """False-alarm rate (dismissed / reviewed) per rule, camera and model version."""

    def group(by: str) -> list[FalseAlarmRatePublic]:
        return [
            FalseAlarmRatePublic(
                key=r.key,
                confirmed=r.confirmed,
                dismissed=r.dismissed,
                pending=r.pending,
                false_alarm_rate=r.false_alarm_rate,
            )
            for r in false_alarm_rates(conn, scope=scope, by=by)
        ]

    return ReviewStatsPublic(
        by_rule=group("rule"), by_camera=group("camera_id"), by_model_version=group("model_version")
    )


@router.get(
    "/export.zip",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/zip": {}}}},
)
def export_dataset(
    conn: ConnDep,
    scope: ScopeDep,
    store: StoreDep,
    from_: Annotated[IsoDateTime, Query(alias="from")],
    to: IsoDateTime,
) -> StreamingResponse:
    """Reviewed captures as a Pascal VOC dataset (JPEGImages, Annotations, confirmed/dismissed)."""
    if to_utc(to) <= to_utc(from_):
        raise HTTPException(status_code=422, detail="'to' must be after 'from'")
    # the region's dates, as the person asked for them (UTC named the day before)
    name = f"captures-{local_date(from_):%Y%m%d}-{local_date(to):%Y%m%d}.zip"
    return spooled_download(
        lambda out: export_voc(
            conn, store, out, scope=scope, from_ts=to_utc(from_), to_ts=to_utc(to)
        ),
        filename=name,
    )


_DECIDE: dict[int | str, dict[str, Any]] = {
    **not_found("review"),
    409: {"model": ErrorPublic, "description": "The capture was decided already."},
}


@router.post("/{review_id}/confirm", response_model=ReviewPublic, responses=_DECIDE)
def confirm(
    review_id: int, conn: ConnDep, scope: ScopeDep, user: TicketUser, settings: SettingsDep
) -> ReviewPublic:
    """Confirm the capture: its ticket opens (or the open one gets an occurrence)."""
    confirm_review(
        conn,
        review_id=review_id,
        reviewer=user.username,
        scope=scope,
        now=utcnow(),
        settings=settings,
    )
    return _one(conn, scope, review_id)


@router.post("/{review_id}/dismiss", response_model=ReviewPublic, responses=_DECIDE)
def dismiss(
    review_id: int, body: DismissIn, conn: ConnDep, scope: ScopeDep, user: TicketUser
) -> ReviewPublic:
    """Dismiss the capture as a false positive; the reason is kept (and exported)."""
    dismiss_review(
        conn,
        review_id=review_id,
        reviewer=user.username,
        reason=body.reason,
        scope=scope,
        now=utcnow(),
    )
    return _one(conn, scope, review_id)


def _one(conn: ConnDep, scope: ScopeDep, review_id: int) -> ReviewPublic:
    row = get_review(conn, review_id=review_id, scope=scope)
    if row is None:
        raise HTTPException(status_code=404, detail=f"review {review_id} not found")
    return ReviewPublic.model_validate(row)
