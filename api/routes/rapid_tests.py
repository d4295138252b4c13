"""Rapid tests (快检) and purchase records (进货查验): record, import, trace, count.

Writers (admin, regulator, officer, director) record for the sites in their scope; an
insurer reads; a device token is refused (403) like everywhere outside its allow-list.
A failed sample opens a ticket on the buying site and flags the supplier's other recent
deliveries (``api.services.rapid_tests``).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api.deps import ConnDep, ScopeDep, SettingsDep, WriterUser, not_found
from api.routes.inspections import StoreDep
from api.routes.raw_photo import (
    PHOTO_REFUSALS,
    raw_photo_body,
    read_body_limited,
    read_raw_photo,
    stored_photo_response,
)
from api.schemas import ErrorPublic
from api.services.duty_reports import MONTH_PATTERN
from api.services.purchases import (
    PurchaseIn,
    PurchasePublic,
    attach_purchase_photo,
    get_purchase,
    list_purchases,
    purchase_photo,
    record_purchase,
)
from api.services.rapid_test_import import MAX_ROWS, import_csv
from api.services.rapid_test_stats import MonthStatsPublic, monthly_stats
from api.services.rapid_tests import (
    FlagPublic,
    RapidTestIn,
    RapidTestPublic,
    RapidTestSettings,
    attach_photo,
    get_test,
    list_flags,
    list_tests,
    photo_of,
    record_test,
)
from bkcommon.localtime import local_today
from bkcommon.timeutil import utcnow

router = APIRouter(tags=["rapid tests"])

CSV_MAX_BYTES = 2 * 1024 * 1024


def rapid_settings() -> RapidTestSettings:
    """Rapid-test defaults from the environment (``BK_RAPID_*``)."""
    return RapidTestSettings()


RapidSettingsDep = Annotated[RapidTestSettings, Depends(rapid_settings)]

_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorPublic, "description": "This delivery is recorded already."}
}


@router.post(
    "/purchases",
    response_model=PurchasePublic,
    status_code=201,
    responses={
        **not_found("site"),
        **_CONFLICT,
        422: {"model": ErrorPublic, "description": "Invalid input; the message names the field."},
    },
)
def post_purchase(
    conn: ConnDep, scope: ScopeDep, user: WriterUser, body: PurchaseIn
) -> PurchasePublic:
    """Record one delivery (进货查验): supplier and licence, product, batch, date, quantity."""
    return record_purchase(conn, data=body, scope=scope, actor=user.username)


@router.get("/purchases", response_model=list[PurchasePublic])
def get_purchases(
    *,
    conn: ConnDep,
    scope: ScopeDep,
    site_id: Annotated[str | None, Query(max_length=100)] = None,
    supplier_licence: Annotated[str | None, Query(max_length=60)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[PurchasePublic]:
    """Deliveries of your sites, newest first."""
    return list_purchases(
        conn, scope=scope, site_id=site_id, supplier_licence=supplier_licence,
        limit=limit, offset=offset,
    )  # fmt: skip


@router.get(
    "/purchases/{purchase_id}", response_model=PurchasePublic, responses=not_found("purchase")
)
def get_one_purchase(conn: ConnDep, scope: ScopeDep, purchase_id: int) -> PurchasePublic:
    """One delivery."""
    found = get_purchase(conn, purchase_id=purchase_id, scope=scope)
    if found is None:
        raise HTTPException(status_code=404, detail=f"purchase {purchase_id} not found")
    return found


class PurchasePhotoPublic(BaseModel):
    """The stored photo of a delivery."""

    sha256: str


@router.put(
    "/purchases/{purchase_id}/photo",
    response_model=PurchasePhotoPublic,
    responses={**not_found("purchase"), **PHOTO_REFUSALS},
    openapi_extra=raw_photo_body(
        "A photo of the delivery: its note, the supplier's licence or the goods (JPEG or PNG)."
    ),
)
async def put_purchase_photo(  # noqa: PLR0917 - FastAPI dependencies
    request: Request,
    conn: ConnDep,
    scope: ScopeDep,
    user: WriterUser,
    store: StoreDep,
    settings: SettingsDep,
    purchase_id: int,
) -> PurchasePhotoPublic:
    """Attach the delivery's photo (request body) through the evidence checks."""
    raw = await read_raw_photo(request, settings.max_upload_mb)
    sha = await run_in_threadpool(
        attach_purchase_photo, conn, store=store, purchase_id=purchase_id, content=raw, scope=scope
    )
    return PurchasePhotoPublic(sha256=sha)


@router.get(
    "/purchases/{purchase_id}/photo",
    response_class=Response,
    responses={
        **not_found("purchase or photo"),
        200: {"description": "The photo.", "content": {"image/jpeg": {}, "image/png": {}}},
    },
)
def get_purchase_photo(
    conn: ConnDep, scope: ScopeDep, store: StoreDep, purchase_id: int
) -> Response:
    """The delivery's photo."""
    found = purchase_photo(conn, purchase_id=purchase_id, scope=scope)
    data = None if found is None else store.get(found[0])
    if found is None or data is None:
        raise HTTPException(status_code=404, detail=f"purchase {purchase_id} has no photo")
    return stored_photo_response(data, found[1])


@router.post(
    "/rapid-tests",
    response_model=RapidTestPublic,
    status_code=201,
    responses={
        **not_found("site or purchase"),
        200: {"model": RapidTestPublic, "description": "Recorded before: nothing changed."},
    },
)
def post_rapid_test(  # noqa: PLR0917 - FastAPI dependencies
    conn: ConnDep,
    scope: ScopeDep,
    user: WriterUser,
    settings: RapidSettingsDep,
    body: RapidTestIn,
    response: Response,
) -> RapidTestPublic:
    """Record one tested sample; a failure opens a ticket and flags the supplier's deliveries.

    201 when stored; 200 with the stored test when the same site, sample number and item
    were recorded before (a retry changes nothing).
    """
    test_id, created = record_test(
        conn, data=body, scope=scope, actor=user.username, now=utcnow(), settings=settings
    )
    if not created:
        response.status_code = 200
    found = get_test(conn, test_id=test_id, scope=scope)
    assert found is not None
    return found


class RowErrorPublic(BaseModel):
    """Why one CSV row was not imported."""

    row: int = Field(description="1 = the first data row after the header.")
    field: str
    reason: str


class ImportPublic(BaseModel):
    """What a CSV import did: every valid row stored, every bad one named."""

    imported: int
    duplicates: int = Field(description="Rows recorded by an earlier import: unchanged.")
    failed: int
    test_ids: list[int]
    errors: list[RowErrorPublic]


_CSV_BODY = {"type": "string"}


@router.post(
    "/rapid-tests/import",
    response_model=ImportPublic,
    responses={
        413: {"model": ErrorPublic, "description": "The file is larger than 2 MB."},
        422: {
            "model": ErrorPublic,
            "description": "Not text, a missing column in the header, or too many rows.",
        },
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": (
                "The instrument's CSV export (UTF-8 or GB 18030), header first; "
                f"at most {MAX_ROWS} rows and 2 MB."
            ),
            "content": {"text/csv": {"schema": _CSV_BODY}},
        }
    },
)
async def post_import(
    request: Request,
    conn: ConnDep,
    scope: ScopeDep,
    user: WriterUser,
    settings: RapidSettingsDep,
) -> ImportPublic:
    """Import an instrument's CSV export; bad rows are listed (row, field, reason), not stored."""
    raw = await read_body_limited(request, CSV_MAX_BYTES, "CSV file larger than 2 MB")
    report = await run_in_threadpool(
        import_csv,
        conn,
        raw=raw,
        scope=scope,
        actor=user.username,
        now=utcnow(),
        settings=settings,
    )
    return ImportPublic(
        imported=report.imported,
        duplicates=report.duplicates,
        failed=report.failed,
        test_ids=report.test_ids,
        errors=[RowErrorPublic(row=e.row, field=e.field, reason=e.reason) for e in report.errors],
    )


@router.get("/rapid-tests", response_model=list[RapidTestPublic])
def get_rapid_tests(
    *,
    conn: ConnDep,
    scope: ScopeDep,
    site_id: Annotated[str | None, Query(max_length=100)] = None,
    result: Literal["pass", "fail"] | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[RapidTestPublic]:
    """Rapid tests of your sites, newest first."""
    return list_tests(conn, scope=scope, site_id=site_id, result=result, limit=limit, offset=offset)


@router.get("/rapid-tests/flags", response_model=list[FlagPublic])
def get_flags(
    conn: ConnDep,
    scope: ScopeDep,
    site_id: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[FlagPublic]:
    """Deliveries of your sites flagged because the same supplier's sample failed elsewhere."""
    return list_flags(conn, scope=scope, site_id=site_id, limit=limit, offset=offset)


_MONTH = MONTH_PATTERN  # 2000-2099, as every date the API takes (year 0000 was a 500)


def _month(text: str) -> date:
    return date(int(text[:4]), int(text[5:7]), 1)


@router.get("/rapid-tests/stats", response_model=list[MonthStatsPublic])
def get_stats(
    conn: ConnDep,
    scope: ScopeDep,
    from_: Annotated[
        str | None, Query(alias="from", pattern=_MONTH, description="First month, YYYY-MM.")
    ] = None,
    to: Annotated[
        str | None, Query(pattern=_MONTH, description="Last month, YYYY-MM (default: this one).")
    ] = None,
) -> list[MonthStatsPublic]:
    """Batches, pass rate and failures by item and supplier, per month (the region's local time).

    Default: the twelve months up to this one. Only months with tests are listed.
    """
    # this month of the region's calendar: on the 1st before 08:00 Beijing time UTC's month
    # is still the last one, and the new month's tests were left out of the default view
    last = _month(to) if to else local_today().replace(day=1)
    first = _month(from_) if from_ else date(last.year - 1, last.month, 1)
    if first > last:
        raise HTTPException(status_code=422, detail="query.from: must not be after 'to'")
    return monthly_stats(conn, scope=scope, from_month=first, to_month=last)


@router.get(
    "/rapid-tests/{test_id}", response_model=RapidTestPublic, responses=not_found("rapid test")
)
def get_rapid_test(conn: ConnDep, scope: ScopeDep, test_id: int) -> RapidTestPublic:
    """One rapid test with its ticket and the number of deliveries it flagged."""
    found = get_test(conn, test_id=test_id, scope=scope)
    if found is None:
        raise HTTPException(status_code=404, detail=f"rapid test {test_id} not found")
    return found


class PhotoStoredPublic(BaseModel):
    """The stored photo of a test."""

    sha256: str


@router.put(
    "/rapid-tests/{test_id}/photo",
    response_model=PhotoStoredPublic,
    responses={
        **not_found("rapid test"),
        **PHOTO_REFUSALS,
    },
    openapi_extra=raw_photo_body("A photo of the strip or the instrument's screen (JPEG or PNG)."),
)
async def put_photo(  # noqa: PLR0917 - FastAPI dependencies
    request: Request,
    conn: ConnDep,
    scope: ScopeDep,
    user: WriterUser,
    store: StoreDep,
    settings: SettingsDep,
    test_id: int,
) -> PhotoStoredPublic:
    """Attach the photo (request body) through the evidence checks: type, size, bombs."""
    raw = await read_raw_photo(request, settings.max_upload_mb)
    sha = await run_in_threadpool(
        attach_photo, conn, store=store, test_id=test_id, content=raw, scope=scope
    )
    return PhotoStoredPublic(sha256=sha)


@router.get(
    "/rapid-tests/{test_id}/photo",
    response_class=Response,
    responses={
        **not_found("rapid test or photo"),
        200: {
            "description": "The photo.",
            "content": {"image/jpeg": {}, "image/png": {}},
        },
    },
)
def get_photo(conn: ConnDep, scope: ScopeDep, store: StoreDep, test_id: int) -> Response:
    """The photo of the strip or instrument screen."""
    found = photo_of(conn, test_id=test_id, scope=scope)
    data = None if found is None else store.get(found[0])
    if found is None or data is None:
        raise HTTPException(status_code=404, detail=f"rapid test {test_id} has no photo")
    return stored_photo_response(data, found[1])
