"""Inspections (检查): checklists, results, photos, the rectification notice, random plans."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from api.auth.scope import Principal, Role
from api.deps import (
    ConnDep,
    CurrentUser,
    InspectionUser,
    ScopeDep,
    SettingsDep,
    not_found,
    require_role,
)
from api.routes.raw_photo import PHOTO_REFUSALS, raw_photo_body, read_raw_photo
from api.schemas import ErrorPublic
from api.services.evidence import EvidenceStore
from api.services.evidence_store import make_store
from api.services.inspection_plan import PlanPublic, PlanRequest, plan_inspections
from api.services.inspections import (
    InspectionCreate,
    InspectionPublic,
    InspectionSummary,
    TemplateCreate,
    TemplatePublic,
    add_photo,
    create_inspection,
    create_template,
    get_inspection,
    list_inspections,
    list_templates,
    sign_notice,
)
from api.services.notice import load_notice, render_html, render_text
from api.services.standard_checklist import ensure_standard_template
from bkcommon.timeutil import utcnow

router = APIRouter(tags=["inspections"])

# Checklist templates are shared by every region: admins and regulators write them; an
# inspector (执法检查人员) plans, records and signs inspections with them (InspectionUser).
TemplateAuthor = Annotated[Principal, Depends(require_role(Role.ADMIN, Role.REGULATOR))]
Inspector = InspectionUser


def evidence_store(settings: SettingsDep) -> EvidenceStore:
    """The content-addressed evidence store of this API (``BK_API_EVIDENCE_STORE``)."""
    return make_store(settings)


StoreDep = Annotated[EvidenceStore, Depends(evidence_store)]


@router.post("/checklist-templates", response_model=TemplatePublic, status_code=201)
def post_template(conn: ConnDep, user: TemplateAuthor, body: TemplateCreate) -> TemplatePublic:
    """Create a checklist template (items with code, text, tier and the rule of their ticket)."""
    return create_template(conn=conn, data=body)


@router.post(
    "/checklist-templates/standard",
    response_model=TemplatePublic,
    responses={200: {"description": "It already existed."}, 201: {"description": "Created."}},
)
def post_standard_template(
    conn: ConnDep, user: TemplateAuthor, response: Response
) -> TemplatePublic:
    """Create the standard routine checklist of a school canteen (``学校食堂日常监督检查表``),
    once: a district starts from it instead of writing a template (201 when created, 200
    with the existing one)."""
    template, created = ensure_standard_template(conn)
    response.status_code = 201 if created else 200
    return template


@router.get("/checklist-templates", response_model=list[TemplatePublic])
def get_templates(conn: ConnDep, user: CurrentUser) -> list[TemplatePublic]:
    """All checklist templates."""
    return list_templates(conn=conn)


@router.post(
    "/inspections",
    response_model=InspectionPublic,
    status_code=201,
    responses={
        **not_found("site or inspection"),
        200: {"model": InspectionPublic, "description": "A retried request: already recorded."},
        409: {"model": ErrorPublic, "description": "That start is recorded with other results."},
    },
)
def post_inspection(
    conn: ConnDep, user: Inspector, scope: ScopeDep, body: InspectionCreate, response: Response
) -> InspectionPublic:
    """Record an inspection with its results; failed items open tickets, a follow-up closes them.

    A retry of the same request (same inspector, site, kind, start and results) answers the
    inspection already recorded with 200; the same start with other results is 409.
    """
    found = create_inspection(conn=conn, data=body, scope=scope, actor=user.username, now=utcnow())
    if found.replayed:
        response.status_code = 200
    return found


@router.get("/inspections", response_model=list[InspectionSummary])
def get_inspections(
    conn: ConnDep,
    scope: ScopeDep,
    site_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[InspectionSummary]:
    """Inspections of your sites, newest first."""
    return list_inspections(conn=conn, scope=scope, site_id=site_id, limit=limit, offset=offset)


@router.post("/inspections/plan", response_model=PlanPublic)
def post_plan(conn: ConnDep, user: Inspector, scope: ScopeDep, body: PlanRequest) -> PlanPublic:
    """Draw sites for random inspection, weighted by risk score; the same seed, the same list."""
    return plan_inspections(conn=conn, request=body, scope=scope)


@router.get(
    "/inspections/{inspection_id}",
    response_model=InspectionPublic,
    responses=not_found("inspection"),
)
def get_one(conn: ConnDep, scope: ScopeDep, inspection_id: int) -> InspectionPublic:
    """One inspection with its items, their tickets and photos."""
    found = get_inspection(conn=conn, inspection_id=inspection_id, scope=scope)
    if found is None:
        raise HTTPException(status_code=404, detail=f"inspection {inspection_id} not found")
    return found


class PhotoPublic(BaseModel):
    """A stored photo."""

    sha256: str
    item_code: str


@router.post(
    "/inspections/{inspection_id}/photos",
    response_model=PhotoPublic,
    status_code=201,
    responses={
        **not_found("inspection or item"),
        **PHOTO_REFUSALS,
        409: {"model": ErrorPublic, "description": "The notice is signed: its evidence is final."},
    },
    openapi_extra=raw_photo_body("The photo's bytes (JPEG or PNG; the bytes decide which)."),
)
async def post_photo(  # noqa: PLR0917 - FastAPI dependencies
    request: Request,
    conn: ConnDep,
    user: Inspector,
    scope: ScopeDep,
    store: StoreDep,
    settings: SettingsDep,
    inspection_id: int,
    item_code: Annotated[str, Query(max_length=40)] = "",
) -> PhotoPublic:
    """Attach a photo (the request body: JPEG or PNG bytes) to the inspection or one item.

    The declared type must be a photo's, the size is limited while the body streams in
    (an announced Content-Length over the limit is refused before reading), and the
    bytes must decode as the JPEG or PNG they claim to be, within the pixel limit.
    """
    data = await read_raw_photo(request, settings.max_upload_mb)
    sha = await run_in_threadpool(
        add_photo,
        conn=conn,
        store=store,
        inspection_id=inspection_id,
        item_code=item_code,
        content=data,
        scope=scope,
    )
    return PhotoPublic(sha256=sha, item_code=item_code)


class SignRequest(BaseModel):
    """Who signs the notice (defaults to the signed-in user)."""

    model_config = ConfigDict(extra="forbid")

    signed_by: str | None = Field(default=None, min_length=1, max_length=100)


@router.post(
    "/inspections/{inspection_id}/sign",
    response_model=InspectionPublic,
    responses={
        **not_found("inspection"),
        409: {"model": ErrorPublic, "description": "Signed already, or no item failed."},
    },
)
def post_sign(
    conn: ConnDep, user: Inspector, scope: ScopeDep, inspection_id: int, body: SignRequest
) -> InspectionPublic:
    """Sign the rectification notice (整改通知书); 409 when signed already or nothing failed."""
    return sign_notice(
        conn=conn,
        inspection_id=inspection_id,
        signed_by=body.signed_by or user.username,
        scope=scope,
        now=utcnow(),
        actor=user.username,
    )


@router.get(
    "/inspections/{inspection_id}/notice",
    response_class=HTMLResponse,
    responses={
        **not_found("inspection"),
        200: {
            "description": "The notice as a printable page, or as plain text (format=text).",
            "content": {
                "text/html": {"schema": {"type": "string"}},
                "text/plain": {"schema": {"type": "string"}},
            },
        },
    },
)
def get_notice(
    conn: ConnDep,
    scope: ScopeDep,
    inspection_id: int,
    format: Literal["html", "text"] = "html",
) -> Response:
    """The rectification notice: failed items, deadlines, responsible person, evidence, signer."""
    notice = load_notice(conn=conn, inspection_id=inspection_id, scope=scope)
    if notice is None:
        raise HTTPException(status_code=404, detail=f"inspection {inspection_id} not found")
    if format == "text":
        return PlainTextResponse(render_text(notice))
    return HTMLResponse(render_html(notice))
