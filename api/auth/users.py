"""Users, devices, sign-in with lockout, tokens, and the audit log of sign-ins and changes."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from api.auth.passwords import hash_password, new_token, token_hash, verify_password
from api.auth.scope import Principal, Role
from bkcommon.errors import BrightKitchenError, RequestError

logger = logging.getLogger(__name__)

Conn = psycopg.Connection[Any]


class AuthError(BrightKitchenError):
    """Sign-in refused; ``reason`` is for the audit log, never for the caller.

    Not a RequestError on purpose: the app must never answer with its message.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class UserError(RequestError, ValueError):
    """A user cannot be created or changed as asked (unknown region, duplicate name...)."""

    status_code = 422


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A token just issued: the raw value is only ever available here."""

    token: str
    token_id: int
    expires_at: datetime | None
    principal: Principal


def audit(conn: Conn, *, actor: str, action: str, target: str = "", data: dict[str, Any]) -> None:
    """Append a row to the audit log (sign-ins, user changes, acknowledgements...)."""
    conn.execute(
        "INSERT INTO audit_log (actor, action, target, data) VALUES (%s, %s, %s, %s)",
        (actor, action, target, Jsonb(data)),
    )


def _principal(row: dict[str, Any]) -> Principal:
    return Principal(
        user_id=str(row["id"]),
        username=row["username"],
        role=Role(row["role"]),
        region_id=row["region_id"],
        person_id=row["person_id"],
        insurer=row["insurer"],
    )


def create_user(
    conn: Conn,
    *,
    username: str,
    role: Role,
    password: str | None,
    region_id: str | None = None,
    person_id: str | None = None,
    insurer: str | None = None,
    site_ids: tuple[str, ...] = (),
    actor: str = "cli",
) -> Principal:
    """Insert a user (argon2id password hash) with its site grants; audited as ``user.create``."""
    if role is not Role.DEVICE and not password:
        raise UserError("a password is required for every role but device")
    if role is Role.REGULATOR and not region_id:
        raise UserError("a regulator needs --region")
    if role is Role.INSURER and not insurer:
        raise UserError("an insurer needs --insurer")
    if role in (Role.OFFICER, Role.DIRECTOR) and not (person_id or site_ids):
        raise UserError(f"a {role.value} needs --person or --site")
    try:
        with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(
                """INSERT INTO users (username, password_hash, role, region_id, person_id, insurer)
                   VALUES (%s, %s, %s, %s, %s, %s)
                   RETURNING id, username, role, region_id, person_id, insurer""",
                (
                    username,
                    hash_password(password) if password else None,
                    role.value,
                    region_id,
                    person_id,
                    insurer,
                ),
            ).fetchone()
            assert row is not None
            for site_id in site_ids:
                cur.execute(
                    "INSERT INTO user_sites (user_id, site_id) VALUES (%s, %s)",
                    (row["id"], site_id),
                )
            audit(
                conn,
                actor=actor,
                action="user.create",
                target=f"user:{username}",
                data={"role": role.value, "sites": list(site_ids)},
            )
    except psycopg.errors.UniqueViolation as exc:
        raise UserError(f"username {username!r} is taken") from exc
    except psycopg.errors.ForeignKeyViolation as exc:
        raise UserError(f"unknown region, person or site: {exc.diag.message_detail}") from exc
    return _principal(row)


def issue_token(
    conn: Conn,
    *,
    principal: Principal,
    kind: str,
    ttl: timedelta | None,
    now: datetime,
    name: str = "",
) -> IssuedToken:
    """Store the sha256 of a fresh token and return the raw token (shown once)."""
    token = new_token()
    expires = now + ttl if ttl is not None else None
    row = conn.execute(
        """INSERT INTO api_tokens (user_id, token_hash, kind, name, created_at, expires_at)
           VALUES (%s, %s, %s, %s, %s, %s) RETURNING id""",
        (int(principal.user_id), token_hash(token), kind, name, now, expires),
    ).fetchone()
    assert row is not None
    return IssuedToken(token=token, token_id=int(row[0]), expires_at=expires, principal=principal)


def create_device(
    conn: Conn, *, name: str, site_ids: tuple[str, ...], now: datetime, actor: str = "cli"
) -> IssuedToken:
    """A device user (edge box, ingest worker) for ``site_ids`` and its non-expiring token."""
    if not site_ids:
        raise UserError("a device needs at least one --site")
    with conn.transaction():
        principal = create_user(
            conn, username=name, role=Role.DEVICE, password=None, site_ids=site_ids, actor=actor
        )
        return issue_token(conn, principal=principal, kind="device", ttl=None, now=now, name=name)


def login(
    conn: Conn,
    *,
    username: str,
    password: str,
    now: datetime,
    ttl: timedelta,
    max_failures: int,
    lock: timedelta,
    client: str = "",
) -> IssuedToken:
    """Check a password and issue a session token; lock after ``max_failures`` in a row.

    Every attempt, good or bad, is written to the audit log with its reason.
    """
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            """SELECT id, username, password_hash, role, region_id, person_id, insurer, active,
                      failed_logins, locked_until
               FROM users WHERE username = %s FOR UPDATE""",
            (username,),
        ).fetchone()
        reason = ""
        if row is None:
            verify_password(None, password)  # same cost as a real check
            reason = "unknown user"
        elif row["locked_until"] is not None and row["locked_until"] > now:
            reason = "locked"
        elif not verify_password(row["password_hash"], password):
            reason = "bad password"
            failures = int(row["failed_logins"]) + 1
            locked = now + lock if failures >= max_failures else None
            cur.execute(
                "UPDATE users SET failed_logins = %s, locked_until = %s WHERE id = %s",
                (0 if locked else failures, locked, row["id"]),
            )
            if locked:
                reason = "bad password; locked"
        elif not row["active"]:
            reason = "disabled"
        elif row["role"] == Role.DEVICE.value:
            reason = "device accounts use tokens"
        data = {"client": client}
        if reason:
            audit(
                conn,
                actor=username,
                action="auth.login_failed",
                target=f"user:{username}",
                data={**data, "reason": reason},
            )
        else:
            assert row is not None
            cur.execute(
                "UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = %s",
                (row["id"],),
            )
            audit(conn, actor=username, action="auth.login", target=f"user:{username}", data=data)
    if reason:
        logger.info("sign-in refused for %s: %s", username, reason)
        raise AuthError(reason)
    assert row is not None
    return issue_token(conn, principal=_principal(row), kind="session", ttl=ttl, now=now)


def principal_for_token(conn: Conn, *, token: str, now: datetime) -> Principal | None:
    """The active user of an unexpired, unrevoked token, or None; notes when it was used."""
    found = token_principal(conn, token=token, now=now)
    return found[0] if found is not None else None


def token_principal(
    conn: Conn, *, token: str, now: datetime
) -> tuple[Principal, datetime | None] | None:
    """The active user of a live token and the token's expiry, or None; notes the use.

    ``last_used_at`` is written at most once a minute per token, not on every request.
    """
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            """SELECT u.id, u.username, u.role, u.region_id, u.person_id, u.insurer,
                      t.id AS token_id, t.last_used_at, t.expires_at
               FROM api_tokens t JOIN users u ON u.id = t.user_id
               WHERE t.token_hash = %s AND t.revoked_at IS NULL
                 AND (t.expires_at IS NULL OR t.expires_at > %s) AND u.active""",
            (token_hash(token), now),
        ).fetchone()
        if row is None:
            return None
        last = row["last_used_at"]
        if last is None or now - last > timedelta(minutes=1):  # one write a minute at most
            cur.execute(
                "UPDATE api_tokens SET last_used_at = %s WHERE id = %s", (now, row["token_id"])
            )
    return _principal(row), row["expires_at"]


def revoke_token(conn: Conn, *, token: str, now: datetime, actor: str) -> bool:
    """Revoke a token (sign-out); True when it was live."""
    row = conn.execute(
        "UPDATE api_tokens SET revoked_at = %s WHERE token_hash = %s AND revoked_at IS NULL "
        "RETURNING id",
        (now, token_hash(token)),
    ).fetchone()
    if row is not None:
        audit(conn, actor=actor, action="auth.logout", target=f"token:{row[0]}", data={})
    return row is not None


def list_users(conn: Conn) -> list[dict[str, Any]]:
    """Every user with role, scope anchors, grants and state (no hashes)."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            """SELECT u.id, u.username, u.role, u.region_id, u.person_id, u.insurer, u.active,
                      u.created_at, u.locked_until,
                      COALESCE(array_agg(us.site_id ORDER BY us.site_id)
                               FILTER (WHERE us.site_id IS NOT NULL), '{}') AS site_ids
               FROM users u LEFT JOIN user_sites us ON us.user_id = u.id
               GROUP BY u.id ORDER BY u.username"""
        ).fetchall()


def set_active(conn: Conn, *, username: str, active: bool, actor: str, now: datetime) -> bool:
    """Enable or disable a user; disabling revokes its tokens. True when the user exists."""
    with conn.transaction():
        row = conn.execute(
            "UPDATE users SET active = %s WHERE username = %s RETURNING id", (active, username)
        ).fetchone()
        if row is None:
            return False
        if not active:
            conn.execute(
                "UPDATE api_tokens SET revoked_at = %s WHERE user_id = %s AND revoked_at IS NULL",
                (now, row[0]),
            )
        audit(
            conn,
            actor=actor,
            action="user.enable" if active else "user.disable",
            target=f"user:{username}",
            data={},
        )
    return True
