"""What a device token may call: an explicit allow-list, everything else answers 403.

A device (edge box, sensor gateway) talks MQTT for its readings, violations and status;
on the HTTP API it only needs to know who it is, rotate its own token and sign out. A
stolen box must not read the rectification ledger, alarms, notifications or sites of its
canteen, so the refusal is deny-by-default: a route opts in with
``openapi_extra=DEVICE_ALLOWED`` and every other route that authenticates refuses a
device in ``api.deps.get_auth``, before the route's own code runs. A new route is
therefore closed to devices unless someone decides otherwise.
"""

from __future__ import annotations

from typing import Any, Final

from fastapi import HTTPException, Request

DEVICE_ALLOWED_KEY: Final = "x-device-allowed"
# Mark a route a device may call: ``@router.get(..., openapi_extra=DEVICE_ALLOWED)``.
# The mark is visible in the OpenAPI document, so clients and reviewers see it too.
DEVICE_ALLOWED: Final[dict[str, Any]] = {DEVICE_ALLOWED_KEY: True}


def device_allowed(request: Request) -> bool:
    """True when the route that matched ``request`` is marked as open to devices."""
    route = request.scope.get("route")
    extra = getattr(route, "openapi_extra", None) or {}
    return bool(extra.get(DEVICE_ALLOWED_KEY, False))


def device_refused() -> HTTPException:
    """The 403 a device gets on any route outside its allow-list."""
    return HTTPException(status_code=403, detail="device tokens may not call this route")
