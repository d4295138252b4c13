"""The regulator's side of public complaints and of what each region publishes.

Only admins and regulators (their region tree) triage complaints and set publication: a
canteen's own officer or director never decides a complaint about it (403), an insurer
and a device neither. Confirming opens the canteen's ticket; dismissing needs a reply,
which the complainant reads on the tracking page.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from api.auth.resolve import region_tree
from api.auth.scope import Principal, Role
from api.deps import ConnDep, ScopeDep, SettingsDep, not_found, require_role
from api.routes.evidence import StoreDep
from api.routes.raw_photo import stored_photo_response
from api.schemas import ErrorPublic
from api.services.complaints import (
    REPLY_MAX,
    ComplaintPublic,
    ComplaintSettings,
    confirm,
    dismiss,
    get_complaint,
    list_complaints,
)
from api.services.publication import (
    PublicationIn,
    PublicationPublic,
    effective_for_region,
    set_publication,
)
from bkcommon.timeutil import utcnow

router = APIRouter(tags=["complaints and publication"])

Inspector = Annotated[Principal, Depends(require_role(Role.ADMIN, Role.REGULATOR))]
RegionPath = Annotated[str, Path(min_length=1, max_length=100)]


def complaint_settings() -> ComplaintSettings:
    """Complaint limits and ticket tier from the environment (``BK_COMPLAINT_*``)."""
    return ComplaintSettings()


_DECIDE: dict[int | str, dict[str, Any]] = {
    **not_found("complaint"),
    409: {"model": ErrorPublic, "description": "The complaint was decided already."},
}


@router.get("/complaints", response_model=list[ComplaintPublic])
def read_complaints(
    *,
    conn: ConnDep,
    scope: ScopeDep,
    user: Inspector,
    status: Literal["received", "confirmed", "dismissed", "decided"] | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[ComplaintPublic]:
    """Complaints about canteens of your region (``status=received``: the triage queue,
    oldest first; ``status=decided``: confirmed or dismissed, newest first)."""
    return list_complaints(conn, scope=scope, status=status, limit=limit, offset=offset)


@router.get(
    "/complaints/{complaint_id}", response_model=ComplaintPublic, responses=not_found("complaint")
)
def read_complaint(
    complaint_id: int, conn: ConnDep, scope: ScopeDep, user: Inspector
) -> ComplaintPublic:
    """One complaint with its contact, photos (sha256), decision, ticket and rating."""
    found = get_complaint(conn, complaint_id=complaint_id, scope=scope)
    if found is None:
        raise HTTPException(status_code=404, detail=f"complaint {complaint_id} not found")
    return found


@router.get(
    "/complaints/{complaint_id}/photos/{sha256}",
    response_class=Response,
    responses={
        **not_found("complaint or photo"),
        200: {"description": "The photo.", "content": {"image/jpeg": {}, "image/png": {}}},
    },
)
def read_complaint_photo(  # noqa: PLR0917 - FastAPI dependencies
    complaint_id: int,
    sha256: Annotated[str, Path(pattern=r"^[0-9a-f]{64}$")],
    conn: ConnDep,
    scope: ScopeDep,
    user: Inspector,
    store: StoreDep,
) -> Response:
    """A photo sent with the complaint (before a ticket exists it is served only here)."""
    found = get_complaint(conn, complaint_id=complaint_id, scope=scope)
    row = conn.execute(
        "SELECT media_type FROM complaint_photos WHERE complaint_id = %s AND sha256 = %s",
        (complaint_id, sha256),
    ).fetchone()
    data = store.get(sha256) if found is not None and row is not None else None
    if row is None or data is None:
        raise HTTPException(status_code=404, detail="no such photo of this complaint")
    return stored_photo_response(data, str(row[0]))


class ConfirmIn(BaseModel):
    """An optional reply the complainant reads (e.g. 'the canteen must rectify by Friday')."""

    model_config = ConfigDict(extra="forbid")

    reply: str = Field(default="", max_length=REPLY_MAX)


class DismissIn(BaseModel):
    """Why the complaint opens no case: the complainant reads it."""

    model_config = ConfigDict(extra="forbid")

    reply: str = Field(min_length=1, max_length=REPLY_MAX)


@router.post("/complaints/{complaint_id}/confirm", response_model=ComplaintPublic,
             responses=_DECIDE)  # fmt: skip
def confirm_complaint(  # noqa: PLR0917 - FastAPI dependencies
    complaint_id: int,
    body: ConfirmIn,
    conn: ConnDep,
    scope: ScopeDep,
    user: Inspector,
    settings: SettingsDep,
    limits: Annotated[ComplaintSettings, Depends(complaint_settings)],
) -> ComplaintPublic:
    """Confirm the complaint: a ticket opens on the canteen and its officers are notified."""
    confirm(
        conn, complaint_id=complaint_id, actor=user.username, reply=body.reply.strip(),
        scope=scope, now=utcnow(), limits=limits, api_settings=settings,
    )  # fmt: skip
    return read_complaint(complaint_id, conn, scope, user)


@router.post("/complaints/{complaint_id}/dismiss", response_model=ComplaintPublic,
             responses=_DECIDE)  # fmt: skip
def dismiss_complaint(
    complaint_id: int, body: DismissIn, conn: ConnDep, scope: ScopeDep, user: Inspector
) -> ComplaintPublic:
    """Dismiss the complaint with a reply; no ticket opens."""
    dismiss(conn, complaint_id=complaint_id, actor=user.username, reply=body.reply,
            scope=scope, now=utcnow())  # fmt: skip
    return read_complaint(complaint_id, conn, scope, user)


def own_region_or_404(conn: ConnDep, user: Principal, region_id: str) -> None:
    """404 for an unknown region, and for a regulator's region outside their tree (as sites)."""
    if not region_tree(conn, region_id) or (
        user.role is not Role.ADMIN and region_id not in region_tree(conn, user.region_id)
    ):
        raise HTTPException(status_code=404, detail=f"region {region_id} not found")


_REGION = not_found("region in your region tree, or no setting applies to it")


@router.get("/publication/{region_id}", response_model=PublicationPublic, responses=_REGION)
def read_publication(region_id: RegionPath, conn: ConnDep, user: Inspector) -> PublicationPublic:
    """What the region's public pages show: its own setting or the nearest ancestor's."""
    own_region_or_404(conn, user, region_id)
    found = effective_for_region(conn, region_id)
    if found is None:
        raise HTTPException(status_code=404, detail=f"nothing is published in {region_id}")
    return found


@router.put("/publication/{region_id}", response_model=PublicationPublic, responses=_REGION)
def put_publication(
    region_id: RegionPath, body: PublicationIn, conn: ConnDep, user: Inspector
) -> PublicationPublic:
    """Set what the region (and sub-regions without their own) publishes; off by default."""
    own_region_or_404(conn, user, region_id)
    return set_publication(conn, region_id=region_id, data=body, actor=user.username,
                           now=utcnow())  # fmt: skip
