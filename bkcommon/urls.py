"""Camera URLs without their secrets, for logs, status, events and ``--validate-config``."""

from __future__ import annotations

import re

# query parameters cameras and NVRs take credentials in (Dahua/Hikvision CGI, tokens)
_SECRET_PARAM = re.compile(
    r"(?i)([?&;](?:password|passwd|pass|pwd|token|access_token|auth|key|secret|signature|sig)=)"
    r"[^&;#]*"
)


def mask_url(url: str) -> str:
    """``url`` with the password of its user-info and secret query values replaced by ``***``.

    The user-info ends at the *last* ``@`` before the path (as FFmpeg reads it), so a
    password that itself holds ``@`` is masked whole.

    Example:
        >>> mask_url("rtsp://admin:Pa@ss@10.0.0.5/Streaming/Channels/101")
        'rtsp://admin:***@10.0.0.5/Streaming/Channels/101'
        >>> mask_url("http://10.0.0.7/video.cgi?channel=1&user=admin&password=Secr3t")
        'http://10.0.0.7/video.cgi?channel=1&user=admin&password=***'
        >>> mask_url("/data/cam1.mp4")
        '/data/cam1.mp4'
    """
    out = url
    if "://" in url:
        scheme, rest = url.split("://", 1)
        cut = min((i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i >= 0),
                  default=len(rest))  # fmt: skip
        netloc, tail = rest[:cut], rest[cut:]
        if "@" in netloc:
            userinfo, host = netloc.rsplit("@", 1)
            user = userinfo.split(":", 1)[0]
            netloc = f"{user}:***@{host}" if ":" in userinfo else f"***@{host}"
        out = f"{scheme}://{netloc}{tail}"
    return _SECRET_PARAM.sub(r"\1***", out)
