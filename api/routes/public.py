"""The public pages (阳光公示, 百姓点检): no sign-in, under ``/public``, outside the console.

- ``GET /public/canteens/{site_id}``: the canteen's page, only what its region publishes
  (``api.services.publication``), with the complaint form.
- ``GET /public/canteens/{site_id}/qr.svg`` / ``qr.png``: the QR code for its door, made
  offline with segno; it encodes the page's address under ``BK_API_PUBLIC_BASE_URL``.
- ``POST /public/canteens/{site_id}/complaints``: the form; 303 to the tracking page.
- ``GET /public/complaints/{code}``: the tracking page; ``POST .../rating`` rates it.

Pages answer HTML; refusals are the API's JSON error bodies (``ErrorPublic``), like every
route. Upload bodies are limited while they stream (``LimitedBodyRoute``) and each photo
goes through the evidence checks.
"""

from __future__ import annotations

import io
from typing import Annotated, Any, Literal

import segno
from fastapi import APIRouter, Depends, File, Form, HTTPException, Path, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from api.deps import ConnDep, SettingsDep
from api.routes.evidence import LimitedBodyRoute, StoreDep, max_upload_bytes, read_upload
from api.schemas import ErrorPublic
from api.services.complaints import ComplaintSettings, rate, submit, track
from api.services.evidence import EvidenceError
from api.services.public_page import build_page
from api.services.public_render import (
    PAGE_CSP,
    render_canteen,
    render_tracking,
    render_unpublished,
)
from api.services.publication import effective_for_site
from bkcommon.timeutil import utcnow

router = APIRouter(prefix="/public", tags=["public pages"], route_class=LimitedBodyRoute)

SitePath = Annotated[str, Path(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.\-]+$")]
CodePath = Annotated[str, Path(pattern=r"^[A-Za-z0-9]{4}-[A-Za-z0-9]{4}-[A-Za-z0-9]{4}$")]

_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": PAGE_CSP,
    "X-Frame-Options": "DENY",
}


def complaint_settings() -> ComplaintSettings:
    """Complaint limits from the environment (``BK_COMPLAINT_*``)."""
    return ComplaintSettings()


ComplaintSettingsDep = Annotated[ComplaintSettings, Depends(complaint_settings)]


def _html(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"text/html": {"schema": {"type": "string"}}}}


def _err(description: str) -> dict[str, Any]:
    return {"model": ErrorPublic, "description": description}


def _redirect(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "headers": {"Location": {"schema": {"type": "string"}, "description": "Where to go."}},
    }


def page_path(site_id: str) -> str:
    """The public page's path of a site (what the QR code points at, below the base URL)."""
    return f"/public/canteens/{site_id}"


@router.get(
    "/canteens/{site_id}",
    response_class=HTMLResponse,
    responses={
        200: _html("The canteen's published facts and complaint form, or 'not published'."),
        404: _err("No such canteen."),
    },
)
def canteen_page(site_id: SitePath, conn: ConnDep) -> HTMLResponse:
    """A canteen's public page: only the sections its region publishes, nothing personal."""
    found = effective_for_site(conn, site_id)
    if found is None:
        raise HTTPException(status_code=404, detail=f"canteen {site_id} not found")
    name, setting = found
    if setting is None or not setting.enabled:
        return HTMLResponse(render_unpublished(name), headers=_HEADERS)
    page = build_page(conn, site_id=site_id, site_name=name, setting=setting, now=utcnow())
    action = f"{page_path(site_id)}/complaints"
    return HTMLResponse(render_canteen(page, complaint_action=action), headers=_HEADERS)


def _qr(conn: ConnDep, settings: SettingsDep, site_id: str) -> segno.QRCode:
    if effective_for_site(conn, site_id) is None:
        raise HTTPException(status_code=404, detail=f"canteen {site_id} not found")
    return segno.make(settings.link(page_path(site_id)), error="m", micro=False)


@router.get(
    "/canteens/{site_id}/qr.svg",
    response_class=Response,
    responses={
        200: {"description": "The QR code (SVG).", "content": {"image/svg+xml": {}}},
        404: _err("No such canteen."),
    },
)
def canteen_qr_svg(site_id: SitePath, conn: ConnDep, settings: SettingsDep) -> Response:
    """The QR code of the canteen's public page, as SVG, for the sign on its door."""
    out = io.BytesIO()
    _qr(conn, settings, site_id).save(out, kind="svg", scale=8, border=4, xmldecl=True)
    return Response(out.getvalue(), media_type="image/svg+xml", headers=_HEADERS)


@router.get(
    "/canteens/{site_id}/qr.png",
    response_class=Response,
    responses={
        200: {"description": "The QR code (PNG).", "content": {"image/png": {}}},
        404: _err("No such canteen."),
    },
)
def canteen_qr_png(site_id: SitePath, conn: ConnDep, settings: SettingsDep) -> Response:
    """The QR code of the canteen's public page, as PNG (10 px modules), for printing."""
    out = io.BytesIO()
    _qr(conn, settings, site_id).save(out, kind="png", scale=10, border=4)
    return Response(out.getvalue(), media_type="image/png", headers=_HEADERS)


@router.post(
    "/canteens/{site_id}/complaints",
    status_code=303,
    response_class=RedirectResponse,
    responses={
        303: _redirect("Received: go to the tracking page (its address has the code)."),
        404: _err("No such canteen, or its region takes no complaints."),
        413: _err("A photo or the request body is too large."),
        415: _err("A photo is not a JPEG or PNG image."),
        429: _err("Too many complaints from this connection or for this canteen this hour."),
    },
)
async def post_complaint(  # noqa: PLR0917 - the form's fields and dependencies
    request: Request,
    site_id: SitePath,
    conn: ConnDep,
    store: StoreDep,
    settings: SettingsDep,
    limits: ComplaintSettingsDep,
    body: Annotated[str, Form(min_length=1, max_length=2000, description="What you saw.")],
    contact: Annotated[str, Form(max_length=100, description="Optional: how to reach you.")] = "",
    photos: Annotated[
        list[UploadFile] | None, File(description="Up to 3 photos (JPEG or PNG).")
    ] = None,
) -> RedirectResponse:
    """Receive a complaint (text, optional contact and photos); 303 to its tracking page."""
    # a browser sends an empty, nameless part when no file was chosen: not a photo
    uploads = [u for u in photos or [] if u.filename or (u.size or 0) > 0]
    data = [await _read_photo(i, u, max_upload_bytes(settings)) for i, u in enumerate(uploads)]
    code = await run_in_threadpool(
        submit,
        conn,
        store=store,
        site_id=site_id,
        body=body,
        contact=contact,
        photos=data,
        client_address=request.client.host if request.client else "",
        now=utcnow(),
        limits=limits,
        api_settings=settings,
    )
    return RedirectResponse(f"/public/complaints/{code}", status_code=303, headers=_HEADERS)


async def _read_photo(index: int, upload: UploadFile, limit: int) -> bytes:
    """One photo of the form, read within the limit; a refusal names the photo."""
    try:
        return await read_upload(upload, limit)
    except EvidenceError as exc:
        raise type(exc)(f"photos[{index}]: {exc}") from exc
    except HTTPException as exc:
        raise HTTPException(exc.status_code, f"photos[{index}]: {exc.detail}") from exc


@router.get(
    "/complaints/{code}",
    response_class=HTMLResponse,
    responses={200: _html("The complaint's stage and reply."), 404: _err("No such code.")},
)
def tracking_page(code: CodePath, conn: ConnDep) -> HTMLResponse:
    """The complainant's page by tracking code: stage, reply, dates and the rating form."""
    view = track(conn, code=code)
    if view is None:
        raise HTTPException(status_code=404, detail="no complaint with this tracking code")
    action = f"/public/complaints/{view.tracking_code}/rating"
    return HTMLResponse(render_tracking(view, rating_action=action), headers=_HEADERS)


@router.post(
    "/complaints/{code}/rating",
    status_code=303,
    response_class=RedirectResponse,
    responses={
        303: _redirect("Rated: back to the tracking page."),
        404: _err("No such code."),
        409: _err("Rated already, or not closed or dismissed yet."),
    },
)
def post_rating(
    code: CodePath,
    conn: ConnDep,
    rating: Annotated[Literal["satisfied", "unsatisfied"], Form()],
    comment: Annotated[str, Form(max_length=500)] = "",
) -> RedirectResponse:
    """Rate the handling once it is closed or dismissed: satisfied or not, once."""
    view = rate(conn, code=code, rating=rating, comment=comment, now=utcnow())
    return RedirectResponse(
        f"/public/complaints/{view.tracking_code}", status_code=303, headers=_HEADERS
    )
