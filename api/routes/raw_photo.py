"""How a route that takes one photo as its raw request body is documented.

Inspection photos, duty photos and rapid-test photos are sent as the image's bytes (not
multipart), checked by :mod:`api.services.evidence` while they stream. Their OpenAPI
request body and refusals are the same everywhere, so they are declared once here and the
contract test (schemathesis) sees one shape.
"""

from __future__ import annotations

from typing import Any

from api.schemas import ErrorPublic

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
