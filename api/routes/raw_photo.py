"""How a route that takes one photo as its raw request body is documented, read and served.

Inspection photos, duty photos, rapid-test and delivery photos are sent as the image's
bytes (not multipart), checked by :mod:`api.services.evidence` while they stream. Their
OpenAPI request body and refusals are the same everywhere, so they are declared once here
and the contract test (schemathesis) sees one shape. The body is read under the same size
limit, and a stored photo is answered with the same headers, by the helpers below.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import Response

from api.schemas import ErrorPublic
from api.services.evidence import TooLargeError, check_declared_type

_BINARY = {"type": "string", "format": "binary"}

PHOTO_REFUSALS: dict[int | str, dict[str, Any]] = {
    413: {"model": ErrorPublic, "description": "The photo is larger than the upload limit."},
    415: {
        "model": ErrorPublic,
        "description": "Not a JPEG or PNG image, or declared as something else.",
    },
    422: {"model": ErrorPublic, "description": "Invalid input, or a decompression bomb."},
}
"""The answers of :mod:`api.services.evidence`'s checks, for ``responses=``."""


def raw_photo_body(description: str) -> dict[str, Any]:
    """``openapi_extra`` declaring a required JPEG / PNG body described by ``description``."""
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {
                "image/jpeg": {"schema": _BINARY},
                "image/png": {"schema": _BINARY},
                "application/octet-stream": {"schema": _BINARY},
            },
        }
    }


async def read_body_limited(request: Request, limit: int, message: str) -> bytes:
    """The request body, refused with 413 (``message``) as soon as it passes ``limit`` bytes.

    An announced Content-Length over the limit is refused before anything is read.
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise TooLargeError(message)
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > limit:
            raise TooLargeError(message)
    return bytes(data)


async def read_raw_photo(request: Request, max_upload_mb: float) -> bytes:
    """The photo in the request body: declared as a photo (415) and within the limit (413).

    The bytes themselves (type, decoding, bombs) are checked by the service that stores them.
    """
    check_declared_type(request.headers.get("content-type"))
    return await read_body_limited(
        request,
        int(max_upload_mb * 1024 * 1024),
        f"photo larger than the {max_upload_mb:g} MB limit",
    )


def stored_photo_response(data: bytes, media_type: str) -> Response:
    """A stored photo's bytes as the answer: never sniffed, cached by the caller only."""
    return Response(
        data,
        media_type=media_type,
        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "private, max-age=3600"},
    )
