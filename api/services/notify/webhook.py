"""Generic webhook channel: POST the notification's JSON payload to a URL."""

from __future__ import annotations

import httpx

from api.services.notify.base import OutgoingMessage
from bkcommon.errors import DeliveryError

_DETAIL_CHARS = 200


class WebhookChannel:
    """POSTs the JSON payload; any 2xx is delivered, anything else raises DeliveryError."""

    def __init__(self, *, timeout_s: float, client: httpx.Client | None = None) -> None:
        self._client = client or httpx.Client(timeout=timeout_s, follow_redirects=False)

    def send(self, msg: OutgoingMessage) -> None:
        """POST ``msg.payload``; the notification id travels as an idempotency key."""
        headers = {
            "Idempotency-Key": f"bk-notification-{msg.notification_id}",
            "User-Agent": "brightkitchen",
        }
        post_json(self._client, msg.address, msg.payload, headers=headers)

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()


def post_json(
    client: httpx.Client,
    url: str,
    body: object,
    *,
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
) -> httpx.Response:
    """POST JSON and return the response; raise DeliveryError on a transport error or non-2xx."""
    try:
        # Merge, not replace: robot URLs already carry their key / access_token.
        target = httpx.URL(url).copy_merge_params(params) if params else httpx.URL(url)
        resp = client.post(target, json=body, headers=headers)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc
    if not resp.is_success:
        raise DeliveryError(f"HTTP {resp.status_code}: {resp.text[:_DETAIL_CHARS]}")
    return resp


def check_errcode(resp: httpx.Response, robot: str) -> None:
    """Chat robots answer HTTP 200 with ``{"errcode": n}``; anything but 0 is a failure."""
    try:
        data = resp.json()
    except ValueError as exc:
        raise DeliveryError(f"{robot} answered non-JSON: {resp.text[:200]}") from exc
    if not isinstance(data, dict) or data.get("errcode", 0) != 0:
        raise DeliveryError(f"{robot} refused: {str(data)[:200]}")
