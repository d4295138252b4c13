"""Evidence files: upload a photo to a ticket, list a ticket's files, fetch one by its hash."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, HTTPException, Request, UploadFile
from fastapi.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.types import Message, Receive

from api.deps import ConnDep, ScopeDep, SettingsDep, WriterUser, not_found
from api.schemas_loop import EvidencePublic
from api.services.evidence import (
    EvidenceStore,
    attach_photo,
    check_declared_type,
    load_bytes,
    ticket_evidence,
    visible,
)
from api.services.evidence_store import S3Store, make_store
from api.settings import ApiSettings
from bkcommon.timeutil import utcnow

_MULTIPART_OVERHEAD = 64 * 1024
_SERVED_TYPES = frozenset({"image/jpeg", "image/png"})
_PHOTOS_PER_REQUEST = 4


def body_limit(settings: ApiSettings) -> int:
    """Largest request body of an upload route: its photos at the file limit, plus framing."""
    return int(settings.max_upload_mb * 1024 * 1024) * _PHOTOS_PER_REQUEST + _MULTIPART_OVERHEAD


def _too_large(limit: int) -> str:
    return f"request body larger than {limit} bytes ({_PHOTOS_PER_REQUEST} photos at the limit)"


def limited_receive(receive: Receive, limit: int) -> Receive:
    """``receive`` that fails with 413 as soon as the body passes ``limit`` bytes.

    The multipart parser spools files to disk as they arrive; counting here stops a
    chunked upload (no Content-Length) before it is written anywhere, not after.
    """
    received = 0

    async def counted() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise HTTPException(status_code=413, detail=_too_large(limit))
        return message

    return counted


class LimitedBodyRoute(APIRoute):
    """A route whose request body is limited while it streams in (413), announced or not."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Wrap the handler: refuse a Content-Length over the limit, then count the bytes."""
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            declared = request.headers.get("content-length", "")
            limit = body_limit(request.app.state.settings)
            if declared.isdigit() and int(declared) > limit:
                return JSONResponse({"detail": _too_large(limit)}, status_code=413)
            return await original(Request(request.scope, limited_receive(request.receive, limit)))

        return handler


router = APIRouter(tags=["evidence"], route_class=LimitedBodyRoute)


def get_store(settings: SettingsDep) -> EvidenceStore:
    """The configured evidence store (``BK_API_EVIDENCE_STORE``: a directory or a bucket)."""
    return make_store(settings)


StoreDep = Annotated[EvidenceStore, Depends(get_store)]


def max_upload_bytes(settings: SettingsDep) -> int:
    """The upload limit in bytes."""
    return int(settings.max_upload_mb * 1024 * 1024)


async def read_upload(upload: UploadFile, max_bytes: int) -> bytes:
    """The upload's bytes, read in chunks and refused past ``max_bytes`` (413).

    A part declared as something other than a photo (text/plain, text/html...) is
    refused first (415); the bytes decide between JPEG and PNG later.
    """
    check_declared_type(upload.content_type)
    parts: list[bytes] = []
    total = 0
    while chunk := await upload.read(64 * 1024):
        total += len(chunk)
        if total > max_bytes:
            raise HTTPException(
                status_code=413,
                detail=f"file larger than the {max_bytes // (1024 * 1024)} MB limit",
            )
        parts.append(chunk)
    return b"".join(parts)


def evidence_url(sha256: str) -> str:
    """API path of a stored file."""
    return f"/api/v1/evidence/{sha256}"


@router.post(
    "/tickets/{ticket_id}/evidence",
    response_model=EvidencePublic,
    status_code=201,
    responses={
        **not_found("ticket"),
        413: {"description": "File or request body too large."},
        415: {"description": "Not a JPEG or PNG image, or declared as something else."},
        422: {"description": "Invalid input, a closed ticket, or a decompression bomb."},
    },
)
async def upload_evidence(
    *,
    ticket_id: int,
    conn: ConnDep,
    scope: ScopeDep,
    user: WriterUser,
    settings: SettingsDep,
    store: StoreDep,
    file: Annotated[UploadFile, File(description="A JPEG or PNG photo.")],
) -> EvidencePublic:
    """Attach a photo (JPEG or PNG, checked from its bytes) to a ticket; stored by sha256."""
    data = await read_upload(file, max_upload_bytes(settings))
    return await run_in_threadpool(  # decoding the photo and the database: off the event loop
        store_photo,
        conn,
        store,
        ticket_id=ticket_id,
        data=data,
        filename=file.filename,
        uploaded_by=user.username,
        scope=scope,
    )


def store_photo(
    conn: ConnDep,
    store: EvidenceStore,
    *,
    ticket_id: int,
    data: bytes,
    filename: str | None,
    uploaded_by: str,
    scope: ScopeDep,
) -> EvidencePublic:
    """Attach ``data`` to the ticket and describe it.

    An unknown ticket (TicketNotFoundError: 404) and a refused photo (EvidenceError: 415,
    413, 422) are answered by the app's RequestError handler.
    """
    stored = attach_photo(
        conn,
        store,
        ticket_id=ticket_id,
        data=data,
        filename=filename,
        uploaded_by=uploaded_by,
        scope=scope,
        now=utcnow(),
    )
    row = next(r for r in ticket_evidence(conn, ticket_id=ticket_id) if r[0] == stored.sha256)
    return _public(row)


def _public(row: tuple[object, ...]) -> EvidencePublic:
    keys = ("sha256", "kind", "media_type", "size_bytes", "filename", "uploaded_by", "at")
    data = dict(zip(keys, row[:7], strict=True))
    return EvidencePublic.model_validate(
        {**data, "event_id": row[7], "url": evidence_url(str(row[0]))}
    )


@router.get(
    "/tickets/{ticket_id}/evidence",
    response_model=list[EvidencePublic],
    responses=not_found("ticket"),
)
def list_evidence(ticket_id: int, conn: ConnDep, scope: ScopeDep) -> list[EvidencePublic]:
    """The files attached to a ticket, oldest first."""
    row = conn.execute(
        f"SELECT 1 FROM tickets t WHERE id = %(id)s AND {scope.clause('t.site_id')}",
        {"id": ticket_id, **scope.params()},
    ).fetchone()
    if row is None:
        raise HTTPException(status_code=404, detail=f"ticket {ticket_id} not found")
    return [_public(r) for r in ticket_evidence(conn, ticket_id=ticket_id)]


@router.get(
    "/evidence/{sha256}",
    response_class=Response,
    responses={
        **not_found("file"),
        307: {
            "description": "With BK_API_S3_PRESIGN_S set: a link to the file in the bucket, "
            "signed for that many seconds.",
            "headers": {
                "Location": {"description": "The signed link.", "schema": {"type": "string"}}
            },
        },
        200: {
            "description": "The file's bytes.",
            "content": {"image/jpeg": {}, "image/png": {}},
            "headers": {
                "X-Content-Type-Options": {
                    "description": "nosniff: browsers never guess another type.",
                    "required": True,
                    "schema": {"type": "string", "enum": ["nosniff"]},
                },
                "Cache-Control": {
                    "description": "Private to the signed-in user's browser.",
                    "required": True,
                    "schema": {"type": "string"},
                },
            },
        },
    },
)
def get_evidence(
    sha256: str, conn: ConnDep, scope: ScopeDep, store: StoreDep, settings: SettingsDep
) -> Response:
    """An evidence file or inspection photo, only for those who may see what references it.

    From an S3 bucket the bytes are streamed through, or with ``BK_API_S3_PRESIGN_S`` set
    the answer is a 307 redirect to a link signed for that many seconds; either way only
    after the same scope check.
    """
    sha = sha256.lower()
    if not visible(conn, sha256=sha, scope=scope):
        raise HTTPException(status_code=404, detail="evidence not found")
    headers = {
        "Cache-Control": "private, max-age=3600",
        "X-Content-Type-Options": "nosniff",
        "Content-Disposition": "inline",
    }
    if isinstance(store, S3Store):
        if settings.s3_presign_s:
            url = store.presign(sha, expires_s=settings.s3_presign_s)
            if url is not None:
                return RedirectResponse(url, status_code=307, headers={"Cache-Control": "no-store"})
        else:
            streamed = store.open(sha)
            if streamed is not None and streamed.media_type in _SERVED_TYPES:
                return StreamingResponse(
                    streamed.chunks,
                    media_type=streamed.media_type,
                    headers={**headers, "Content-Length": str(streamed.size_bytes)},
                )
    found = load_bytes(conn, store, sha)  # from the disk store, or not yet moved to the bucket
    if found is None:
        raise HTTPException(status_code=404, detail="evidence not found")
    media_type, data = found
    return Response(content=data, media_type=media_type, headers=headers)
