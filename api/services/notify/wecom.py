"""WeCom (企业微信) group robot channel: a text message posted to the robot URL."""

from __future__ import annotations

import httpx

from api.services.notify.base import OutgoingMessage
from api.services.notify.message import fit_utf8, link_lines
from api.services.notify.webhook import check_errcode, post_json

WECOM_TEXT_MAX_BYTES = 2048
"""``text.content`` of a group robot message: at most 2048 bytes of UTF-8 (errcode 40058)."""


class WeComChannel:
    """WeCom group robot: ``{"msgtype": "text", "text": {"content": ...}}`` to the robot URL."""

    def __init__(self, *, timeout_s: float, client: httpx.Client | None = None) -> None:
        self._client = client or httpx.Client(timeout=timeout_s)

    def send(self, msg: OutgoingMessage) -> None:
        """Post the text body to the robot; the address is the robot URL with its key."""
        content = fit_utf8(msg.body, WECOM_TEXT_MAX_BYTES, keep_tail=link_lines(msg.body))
        resp = post_json(
            self._client, msg.address, {"msgtype": "text", "text": {"content": content}}
        )
        check_errcode(resp, "WeCom")

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()
