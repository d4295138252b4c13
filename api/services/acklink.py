"""Signed acknowledge links: a person acknowledges one ticket from a phone without logging in.

A token names the ticket, the person and an expiry, signed with HMAC-SHA256 under the
server secret (``BK_API_SECRET_KEY``). It is good for that ticket and person only, until it
expires, and once: the route records the signature in ``ack_link_uses``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime

from bkcommon.errors import RequestError


class AckLinkError(RequestError, ValueError):
    """The token is malformed, forged or expired (the link's page answers 403)."""

    status_code = 403


@dataclass(frozen=True, slots=True)
class AckClaim:
    """What a valid token grants: acknowledging ``ticket_id`` as ``person_id`` until expiry."""

    ticket_id: int
    person_id: str
    expires_at: datetime
    signature: str


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(secret: str, message: str) -> str:
    return _b64(hmac.new(secret.encode(), message.encode(), hashlib.sha256).digest())


def make_ack_token(secret: str, *, ticket_id: int, person_id: str, expires_at: datetime) -> str:
    """A URL-safe token ``<ticket>.<person b64>.<expiry unix>.<signature>``.

    Example:
        >>> t = make_ack_token("k", ticket_id=7, person_id="p1",
        ...                    expires_at=datetime(2030, 1, 1, tzinfo=UTC))
        >>> verify_ack_token("k", t, now=datetime(2029, 1, 1, tzinfo=UTC)).person_id
        'p1'
    """
    message = f"{ticket_id}.{_b64(person_id.encode())}.{int(expires_at.timestamp())}"
    return f"{message}.{_sign(secret, message)}"


def verify_ack_token(secret: str, token: str, *, now: datetime) -> AckClaim:
    """Check signature and expiry; raise AckLinkError saying what is wrong."""
    parts = token.split(".")
    if len(parts) != 4 or len(token) > 512:
        raise AckLinkError("malformed acknowledge link")
    ticket, person_b64, expiry, signature = parts
    expected = _sign(secret, f"{ticket}.{person_b64}.{expiry}")
    if not hmac.compare_digest(expected, signature):
        raise AckLinkError("invalid acknowledge link")
    try:
        claim = AckClaim(
            ticket_id=int(ticket),
            person_id=_unb64(person_b64).decode(),
            expires_at=datetime.fromtimestamp(int(expiry), tz=UTC),
            signature=signature,
        )
    except (ValueError, UnicodeDecodeError) as exc:  # signed by us, so only on a key mix-up
        raise AckLinkError("malformed acknowledge link") from exc
    if now >= claim.expires_at:
        raise AckLinkError("this acknowledge link has expired")
    return claim
