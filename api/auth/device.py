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

import logging
from typing import Any, Final

from fastapi import HTTPException, Request

logger = logging.getLogger(__name__)

DEVICE_ALLOWED_KEY: Final = "x-device-allowed"
# Mark a route a device may call: ``@router.get(..., openapi_extra=DEVICE_ALLOWED)``.
# The mark is visible in the OpenAPI document, so clients and reviewers see it too.
DEVICE_ALLOWED: Final[dict[str, Any]] = {DEVICE_ALLOWED_KEY: True}


def device_allowed(request: Request) -> bool:
    """True when the route that matched ``request`` is marked as open to devices."""
    route = request.scope.get("route")
    extra = getattr(route, "openapi_extra", None) or {}
    return bool(extra.get(DEVICE_ALLOWED_KEY, False))


def device_refused(request: Request, device: str) -> HTTPException:
    """The 403 a device gets on any route outside its allow-list, logged as a warning.

    A real box never calls those routes: one that does runs someone else's code (a stolen
    or tampered box), which an operator wants to see.
    """
    logger.warning(
        "device %s refused on %s %s (outside the device allow-list)",
        device,
        request.method,
        request.url.path,
    )
    return HTTPException(status_code=403, detail="device tokens may not call this route")
