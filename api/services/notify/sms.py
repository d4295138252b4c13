"""SMS through an HTTP gateway described by templates (``BK_API_SMS_*``).

The URL template gets ``{phone}`` and ``{text}`` URL-encoded; the body template (POST) gets
them escaped for its content type (JSON string content, or form encoding). Any 2xx is
delivered; anything else raises DeliveryError and the dispatcher retries with backoff.
"""

from __future__ import annotations

import json
from urllib.parse import quote, quote_plus

import httpx

from api.services.notify.base import OutgoingMessage
from bkcommon.errors import DeliveryError

_DETAIL_CHARS = 200
_SMS_MAX_CHARS = 500


def fill(template: str, *, phone: str, text: str, escape: str) -> str:
    """Replace ``{phone}`` and ``{text}`` in ``template``, escaped for ``escape``.

    Example:
        >>> fill('{"to": "{phone}", "msg": "{text}"}', phone="+86 138", text='a "b"', escape="json")
        '{"to": "+86 138", "msg": "a \\\\"b\\\\""}'
        >>> fill("https://g/send?to={phone}&m={text}", phone="+86", text="a b", escape="url")
        'https://g/send?to=%2B86&m=a%20b'
    """

    def esc(v: str) -> str:
        if escape == "json":
            return json.dumps(v, ensure_ascii=False)[1:-1]
        if escape == "form":
            return quote_plus(v)
        return quote(v, safe="")

    return template.replace("{phone}", esc(phone)).replace("{text}", esc(text))


class SmsChannel:
    """Sends the notice's subject line (short) to a phone number through the gateway."""

    def __init__(
        self,
        *,
        url_template: str,
        method: str,
        body_template: str,
        content_type: str,
        timeout_s: float,
        client: httpx.Client | None = None,
    ) -> None:
        self._url = url_template
        self._method = method
        self._body = body_template
        self._content_type = content_type
        self._client = client or httpx.Client(timeout=timeout_s, follow_redirects=False)

    def send(self, msg: OutgoingMessage) -> None:
        """Fill the templates and call the gateway; raise DeliveryError unless it answers 2xx."""
        text = " ".join(msg.subject.split())
        link = msg.payload.get("ack_link") or msg.payload.get("link")
        if link:
            # cut the subject, never the link: a cut acknowledge link is a dead one
            room = max(0, _SMS_MAX_CHARS - len(link) - 2)
            head = text if len(text) <= room else text[: max(0, room - 1)] + "…"
            text = f"{head} {link}"
        text = text[:_SMS_MAX_CHARS]
        url = fill(self._url, phone=msg.address, text=text, escape="url")
        try:
            if self._method == "GET":
                resp = self._client.get(url)
            else:
                escape = "json" if self._content_type == "application/json" else "form"
                body = fill(self._body, phone=msg.address, text=text, escape=escape)
                resp = self._client.post(
                    url,
                    content=body.encode(),
                    headers={"Content-Type": f"{self._content_type}; charset=utf-8"},
                )
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise DeliveryError(f"SMS gateway: {type(exc).__name__}: {exc}") from exc
        if not resp.is_success:
            raise DeliveryError(f"SMS gateway HTTP {resp.status_code}: {resp.text[:_DETAIL_CHARS]}")

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()
