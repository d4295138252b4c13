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
    if role in (Role.REGULATOR, Role.INSPECTOR) and not region_id:
        raise UserError(f"a {role.value} needs --region")
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


DEFAULT_DEVICE_TOKEN_TTL = timedelta(days=180)  # BK_AUTH_DEVICE_TOKEN_TTL_D


def create_device(
    conn: Conn,
    *,
    name: str,
    site_ids: tuple[str, ...],
    now: datetime,
    actor: str = "cli",
    ttl: timedelta = DEFAULT_DEVICE_TOKEN_TTL,
) -> IssuedToken:
    """A device user (edge box, gateway) for ``site_ids`` and its token, expiring after ``ttl``.

    Device tokens expire like sessions, only later: a box that is stolen and never seen
    again loses its API access by itself; a working box rotates its token before then.
    """
    if not site_ids:
        raise UserError("a device needs at least one --site")
    with conn.transaction():
        principal = create_user(
            conn, username=name, role=Role.DEVICE, password=None, site_ids=site_ids, actor=actor
        )
        return issue_token(conn, principal=principal, kind="device", ttl=ttl, now=now, name=name)


def rotate_device_token(
    conn: Conn,
    *,
    token: str,
    principal: Principal,
    now: datetime,
    ttl: timedelta,
    grace: timedelta,
) -> IssuedToken:
    """Issue a fresh device token and let ``token`` expire ``grace`` from now.

    The old token is not revoked at once: a device whose connection dropped before it
    stored the answer can still rotate again with it during the grace period.
    """
    with conn.transaction():
        row = conn.execute(
            """UPDATE api_tokens SET expires_at = LEAST(COALESCE(expires_at, 'infinity'), %s)
               WHERE token_hash = %s AND revoked_at IS NULL RETURNING id""",
            (now + grace, token_hash(token)),
        ).fetchone()
        if row is None:
            raise UserError("the token used is no longer live")
        issued = issue_token(
            conn, principal=principal, kind="device", ttl=ttl, now=now, name=principal.username
        )
        audit(
            conn,
            actor=principal.username,
            action="auth.rotate",
            target=f"token:{row[0]}",
            data={"new_token": issued.token_id},
        )
    return issued


class RateLimitedError(AuthError):
    """Too many failed sign-ins from one client address: answered 429 with Retry-After."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__("client rate limited")
        self.retry_after_s = retry_after_s


@dataclass(frozen=True, slots=True)
class ClientLimit:
    """At most ``max_failures`` failed sign-ins per client address within ``window``."""

    max_failures: int
    window: timedelta


def _client_failures(conn: Conn, client: str, since: datetime) -> tuple[int, datetime | None]:
    """Failed sign-ins of ``client`` since ``since`` and the oldest of them (audit log)."""
    row = conn.execute(
        """SELECT count(*), min(at) FROM audit_log
           WHERE action = 'auth.login_failed' AND data->>'client' = %s AND at > %s""",
        (client, since),
    ).fetchone()
    assert row is not None
    return int(row[0]), row[1]


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
    client_limit: ClientLimit | None = None,
) -> IssuedToken:
    """Check a password and issue a session token; lock after ``max_failures`` in a row.

    Two limits: a username locks after ``max_failures`` failures in a row (guessing one
    account), and a client address that failed ``client_limit.max_failures`` times in the
    window is refused before any password is checked (spraying many accounts; it also
    spares the argon2 work). Every attempt, good or bad, is written to the audit log with
    its reason; the client count is read from there, so it holds across API replicas.
    """
    if client and client_limit is not None:
        failures, oldest = _client_failures(conn, client, now - client_limit.window)
        if failures >= client_limit.max_failures:
            audit(
                conn,
                actor=username,
                action="auth.login_failed",
                target=f"user:{username}",
                data={"client": client, "reason": "client rate limited"},
            )
            logger.info("sign-in refused for client %s: rate limited", client)
            start = oldest or now
            retry = max(1, int((start + client_limit.window - now).total_seconds()) + 1)
            raise RateLimitedError(retry)
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
            verify_password(None, password)  # same cost: a fast answer would name the account
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
    issued = issue_token(conn, principal=_principal(row), kind="session", ttl=ttl, now=now)
    # ids only: the password and the token itself are never logged, at any level
    logger.debug("signed in %s from %s: session token id %d", username, client, issued.token_id)
    return issued


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


def list_tokens(conn: Conn, *, username: str | None = None) -> list[dict[str, Any]]:
    """Tokens with owner, kind, times and state (never the token or its hash), newest first."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            """SELECT t.id, u.username, u.role, t.kind, t.name, t.created_at, t.expires_at,
                      t.last_used_at, t.revoked_at
               FROM api_tokens t JOIN users u ON u.id = t.user_id
               WHERE %(user)s::text IS NULL OR u.username = %(user)s
               ORDER BY t.id DESC LIMIT 1000""",
            {"user": username},
        ).fetchall()


def revoke_token_id(conn: Conn, *, token_id: int, now: datetime, actor: str) -> bool | None:
    """Revoke one token by id: True when revoked now, False when it already was, None unknown."""
    with conn.transaction():
        row = conn.execute(
            "SELECT revoked_at IS NOT NULL FROM api_tokens WHERE id = %s FOR UPDATE", (token_id,)
        ).fetchone()
        if row is None:
            return None
        if row[0]:
            return False
        conn.execute("UPDATE api_tokens SET revoked_at = %s WHERE id = %s", (now, token_id))
        audit(conn, actor=actor, action="auth.revoke", target=f"token:{token_id}", data={})
    return True


def revoke_live_tokens(conn: Conn, *, user_id: int, now: datetime) -> list[int]:
    """Revoke every token of the user that is still live; answer their ids (not audited here)."""
    rows = conn.execute(
        "UPDATE api_tokens SET revoked_at = %s WHERE user_id = %s AND revoked_at IS NULL "
        "RETURNING id",
        (now, user_id),
    ).fetchall()
    return [int(r[0]) for r in rows]


def revoke_user_tokens(conn: Conn, *, username: str, now: datetime, actor: str) -> int | None:
    """Revoke every live token of ``username`` (the account stays enabled); None: no user."""
    with conn.transaction():
        user = conn.execute("SELECT id FROM users WHERE username = %s", (username,)).fetchone()
        if user is None:
            return None
        revoked = revoke_live_tokens(conn, user_id=user[0], now=now)
        audit(
            conn,
            actor=actor,
            action="auth.revoke",
            target=f"user:{username}",
            data={"tokens": revoked},
        )
    return len(revoked)


def list_users(conn: Conn) -> list[dict[str, Any]]:
    """Every user with role, scope anchors, grants, its person's canteens and state (no hashes)."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            """SELECT u.id, u.username, u.role, u.region_id, u.person_id, u.insurer, u.active,
                      u.created_at, u.locked_until,
                      COALESCE(array_agg(us.site_id ORDER BY us.site_id)
                               FILTER (WHERE us.site_id IS NOT NULL), '{}') AS site_ids,
                      COALESCE((SELECT array_agg(DISTINCT sp.site_id ORDER BY sp.site_id)
                                FROM site_people sp WHERE sp.person_id = u.person_id
                                  AND sp.role IN ('officer', 'director')), '{}')
                        AS person_site_ids
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
            revoke_live_tokens(conn, user_id=row[0], now=now)
        audit(
            conn,
            actor=actor,
            action="user.enable" if active else "user.disable",
            target=f"user:{username}",
            data={},
        )
    return True
