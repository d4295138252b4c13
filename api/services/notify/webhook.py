"""Generic webhook channel: POST the notification's JSON payload to a URL.

When the channel has a secret, the request is signed: ``X-BK-Timestamp`` (Unix seconds) and
``X-BK-Signature: sha256=<hex HMAC-SHA256(secret, f"{timestamp}." + raw body)>``; a receiver
recomputes it over the bytes it received and refuses a timestamp older than a few minutes.
Delivery is at least once: the same ``Idempotency-Key`` comes with every retry.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import httpx

from api.services.notify.base import OutgoingMessage
from bkcommon.errors import DeliveryError, PermanentDeliveryError

_DETAIL_CHARS = 200
_RETRYABLE_4XX = frozenset({408, 409, 425, 429})
MAX_ANSWER_BYTES = 64 * 1024
"""Of an endpoint's answer, only this much is read (a robot's errcode, an error text)."""


def webhook_signature(secret: str, timestamp: int, body: bytes) -> str:
    """``sha256=`` and the hex HMAC-SHA256 of ``f"{timestamp}."`` + ``body`` under ``secret``.

    >>> webhook_signature("s", 1700000000, b"{}")[:15]
    'sha256=e9232c99'
    """
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class WebhookChannel:
    """POSTs the JSON payload; any 2xx is delivered, anything else raises DeliveryError."""

    def __init__(self, *, timeout_s: float, client: httpx.Client | None = None) -> None:
        self._client = client or httpx.Client(timeout=timeout_s, follow_redirects=False)

    def send(self, msg: OutgoingMessage) -> None:
        """POST ``msg.payload``; the notification id travels as an idempotency key."""
        body = json.dumps(msg.payload, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {
            "Idempotency-Key": f"bk-notification-{msg.notification_id}",
            "User-Agent": "brightkitchen",
            "Content-Type": "application/json",
        }
        if msg.secret:
            ts = int(time.time())
            headers["X-BK-Timestamp"] = str(ts)
            headers["X-BK-Signature"] = webhook_signature(msg.secret, ts, body)
        post_json(self._client, msg.address, None, headers=headers, content=body)

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
    content: bytes | None = None,
) -> httpx.Response:
    """POST JSON (or ``content``, JSON already encoded) and return the response; raise
    DeliveryError on a transport error or a 5xx / 408 / 429, PermanentDeliveryError on
    another 4xx (a wrong URL or key: retrying for minutes only delays the ``dead`` alert)."""
    # The client's timeout bounds each socket read, not the answer: an endpoint trickling
    # its body a byte at a time would keep this thread (and a sender slot) for ever. The
    # answer is read in pieces against a deadline of twice the read timeout, and at most
    # MAX_ANSWER_BYTES of it.
    budget_s = 2 * (client.timeout.read or 10.0)
    deadline = time.monotonic() + budget_s
    try:
        # Merge, not replace: robot URLs already carry their key / access_token.
        target = httpx.URL(url).copy_merge_params(params) if params else httpx.URL(url)
        if content is None:
            content = json.dumps(body, ensure_ascii=False).encode()
            headers = {"Content-Type": "application/json", **(headers or {})}
        with client.stream("POST", target, content=content, headers=headers) as streamed:
            got = bytearray()
            for piece in streamed.iter_bytes():
                got += piece
                if len(got) > MAX_ANSWER_BYTES:
                    break  # enough to judge the answer; the rest is not read
                if time.monotonic() > deadline:
                    raise DeliveryError(f"no whole answer within {budget_s:g} s")
            resp = httpx.Response(
                streamed.status_code,
                headers=streamed.headers,
                content=bytes(got[:MAX_ANSWER_BYTES]),
                request=streamed.request,
            )
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc
    if not resp.is_success:
        detail = f"HTTP {resp.status_code}: {resp.text[:_DETAIL_CHARS]}"
        if 400 <= resp.status_code < 500 and resp.status_code not in _RETRYABLE_4XX:
            raise PermanentDeliveryError(detail)
        raise DeliveryError(detail)
    return resp


def check_errcode(resp: httpx.Response, robot: str) -> None:
    """Chat robots answer HTTP 200 with ``{"errcode": n}``; anything but 0 is a failure."""
    try:
        data = resp.json()
    except ValueError as exc:
        raise DeliveryError(f"{robot} answered non-JSON: {resp.text[:200]}") from exc
    if not isinstance(data, dict) or data.get("errcode", 0) != 0:
        raise DeliveryError(f"{robot} refused: {str(data)[:200]}")
