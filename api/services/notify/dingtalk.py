"""DingTalk (钉钉) group robot channel, signed with HMAC-SHA256 when the channel has a secret."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import httpx

from api.services.notify.base import OutgoingMessage
from api.services.notify.webhook import check_errcode, post_json


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk robot signature: base64(HMAC-SHA256(secret, f"{timestamp}\\n{secret}")).

    Example:
        >>> len(dingtalk_sign("SEC123", 1700000000000))
        44
    """
    to_sign = f"{timestamp_ms}\n{secret}".encode()
    digest = hmac.new(secret.encode(), to_sign, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


class DingTalkChannel:
    """DingTalk group robot; signs with ``timestamp`` and ``sign`` when the channel has a secret."""

    def __init__(self, *, timeout_s: float, client: httpx.Client | None = None) -> None:
        self._client = client or httpx.Client(timeout=timeout_s)

    def send(self, msg: OutgoingMessage) -> None:
        """Post the text body to the robot URL (access_token in it), signed if a secret is set."""
        params: dict[str, str] | None = None
        if msg.secret:
            ts = int(time.time() * 1000)
            params = {"timestamp": str(ts), "sign": dingtalk_sign(msg.secret, ts)}
        resp = post_json(
            self._client,
            msg.address,
            {"msgtype": "text", "text": {"content": msg.body}},
            params=params,
        )
        check_errcode(resp, "DingTalk")

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()
