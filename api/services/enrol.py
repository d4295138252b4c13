"""Edge-box enrolment: a one-time code traded once for the box's device credentials.

An administrator creates a code for a box of the registry (``brightkitchen enrol create``
or ``POST /api/v1/enrol/codes``) and gives it to the installer; the install script sends
it with the box id to ``POST /api/v1/enrol`` and stores what comes back with tight
permissions. So no long-lived secret is ever typed, mailed or baked into an image: the
code is short-lived, bound to one box, spent by its first use, and stored only hashed.

Redeeming issues, in one transaction with spending the code:

* the box's API device token (user ``<box id>``, role device, granted the box's site);
  a box re-enrolled after a replacement keeps its user, and its older tokens are revoked;
* the box's broker account ``edge.<box id>`` (``brightkitchen.mqtt_accounts``): a new
  password; the broker accepts it once ``registry mqtt-auth write`` ran (the district
  compose stack rewrites the files every 30 s; EMQX reads the table directly).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg

from api.auth.scope import Principal, Role
from api.auth.users import audit, create_device, issue_token, revoke_live_tokens
from bkcommon.errors import RequestError
from brightkitchen.mqtt_accounts import issue_account
from brightkitchen.mqtt_auth import AccountKind

Conn = psycopg.Connection[Any]

# Crockford's base32 without I, L, O, U: nothing to misread when typed from paper.
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_CODE_CHARS = 16  # 80 bits: guessing one live code is hopeless even without rate limits
DEFAULT_CODE_TTL = timedelta(hours=72)
MAX_CODE_TTL = timedelta(days=30)


class EnrolmentError(RequestError):
    """An enrolment code cannot be created as asked (unknown box, bad lifetime)."""

    status_code = 422


class EnrolmentRefusedError(RequestError):
    """A code was not accepted: unknown, spent, expired or for another box (one answer)."""

    status_code = 403


@dataclass(frozen=True, slots=True)
class IssuedCode:
    """A code just created: the code itself exists only here."""

    code: str
    box_id: str
    site_id: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Enrolment:
    """What a box receives once: its API token and broker account."""

    box_id: str
    site_id: str
    api_token: str
    api_token_expires_at: datetime | None
    mqtt_username: str
    mqtt_password: str


def new_code() -> str:
    """A random code in four groups of four, e.g. ``7KQ2-M9XD-4HTR-B0CW``."""
    raw = "".join(secrets.choice(_ALPHABET) for _ in range(_CODE_CHARS))
    return "-".join(raw[i : i + 4] for i in range(0, _CODE_CHARS, 4))


def normalise_code(code: str) -> str:
    """Upper-case, without separators, with the look-alikes read as Crockford does."""
    text = code.upper().replace("-", "").replace(" ", "")
    return text.translate(str.maketrans("OIL", "011"))


def code_hash(code: str) -> str:
    """The sha256 stored for a code (of its normalised form)."""
    return hashlib.sha256(normalise_code(code).encode()).hexdigest()


def _site_of(conn: Conn, box_id: str) -> str | None:
    row = conn.execute("SELECT site_id FROM edge_boxes WHERE id = %s", (box_id,)).fetchone()
    return None if row is None else str(row[0])


def create_code(
    conn: Conn, *, box_id: str, now: datetime, actor: str, ttl: timedelta = DEFAULT_CODE_TTL
) -> IssuedCode:
    """A fresh one-time code for ``box_id`` (which must be in the registry)."""
    if not timedelta(minutes=5) <= ttl <= MAX_CODE_TTL:
        raise EnrolmentError("ttl: a code lives between 5 minutes and 30 days")
    site_id = _site_of(conn, box_id)
    if site_id is None:
        raise EnrolmentError(f"box_id: no edge box {box_id!r} in the registry (registry sync)")
    code = new_code()
    with conn.transaction():
        conn.execute(
            """INSERT INTO enrolment_codes (code_hash, box_id, created_by, created_at, expires_at)
               VALUES (%s, %s, %s, %s, %s)""",
            (code_hash(code), box_id, actor, now, now + ttl),
        )
        audit(conn, actor=actor, action="enrol.code", target=f"box:{box_id}",
              data={"expires_at": (now + ttl).isoformat()})  # fmt: skip
    return IssuedCode(code=code, box_id=box_id, site_id=site_id, expires_at=now + ttl)


def _device_principal(conn: Conn, username: str) -> Principal | None:
    row = conn.execute(
        "SELECT id, role FROM users WHERE username = %s FOR UPDATE", (username,)
    ).fetchone()
    if row is None:
        return None
    if row[1] != Role.DEVICE.value:
        raise EnrolmentRefusedError(f"the name {username!r} belongs to a user who is not a device")
    return Principal(user_id=str(row[0]), username=username, role=Role.DEVICE)


def redeem(
    conn: Conn, *, code: str, box_id: str, now: datetime, client: str, token_ttl: timedelta
) -> Enrolment:
    """Spend ``code`` for ``box_id`` and issue the box's credentials (all or nothing)."""
    refused = EnrolmentRefusedError(
        "enrolment code not accepted: unknown, already used, expired or for another box"
    )
    with conn.transaction():
        row = conn.execute(
            """SELECT c.id, c.box_id, c.expires_at, c.used_at, c.code_hash, b.site_id
               FROM enrolment_codes c JOIN edge_boxes b ON b.id = c.box_id
               WHERE c.code_hash = %s FOR UPDATE OF c""",
            (code_hash(code),),
        ).fetchone()
        if row is None or row[1] != box_id or row[3] is not None or row[2] <= now:
            raise refused
        code_id, site_id = int(row[0]), str(row[5])
        conn.execute(
            "UPDATE enrolment_codes SET used_at = %s, used_from = %s WHERE id = %s",
            (now, client[:200], code_id),
        )
        principal = _device_principal(conn, box_id)
        if principal is None:
            issued = create_device(
                conn, name=box_id, site_ids=(site_id,), now=now, actor="enrol", ttl=token_ttl
            )
        else:  # a replaced box: same identity, the old box's tokens stop working
            revoke_live_tokens(conn, user_id=int(principal.user_id), now=now)
            issued = issue_token(
                conn, principal=principal, kind="device", ttl=token_ttl, now=now, name=box_id
            )
        account = issue_account(conn, kind=AccountKind.EDGE, subject=box_id, now=now)
        audit(conn, actor=box_id, action="enrol.redeem", target=f"box:{box_id}",
              data={"code": code_id, "client": client[:200], "token": issued.token_id,
                    "mqtt_username": account.username})  # fmt: skip
    return Enrolment(
        box_id=box_id,
        site_id=site_id,
        api_token=issued.token,
        api_token_expires_at=issued.expires_at,
        mqtt_username=account.username,
        mqtt_password=account.password,
    )
