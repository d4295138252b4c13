"""Broker accounts in the database (``mqtt_accounts``) and the registry view the ACL needs.

Issuing a password stores only its Mosquitto hash; the password itself is returned once.
Revoking keeps the row (for the record) and drops the account from the next rendering.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from bkcommon.errors import BrightKitchenError, TopicError
from brightkitchen.mqtt_auth import (
    Account,
    AccountKind,
    RegistryView,
    account_username,
    hash_password,
    new_password,
)

Conn = psycopg.Connection[Any]


class AccountError(BrightKitchenError):
    """A broker account cannot be issued or revoked as asked (unknown box or site...)."""


@dataclass(frozen=True, slots=True)
class IssuedAccount:
    """A broker account just issued or rotated: the password exists only here."""

    username: str
    password: str


def _subject_known(conn: Conn, kind: AccountKind, subject: str) -> bool:
    if kind is AccountKind.EDGE:
        row = conn.execute("SELECT 1 FROM edge_boxes WHERE id = %s", (subject,)).fetchone()
    elif kind is AccountKind.GATEWAY:
        row = conn.execute("SELECT 1 FROM sites WHERE id = %s", (subject,)).fetchone()
    else:
        return True  # account_username already checked the service name
    return row is not None


def issue_account(conn: Conn, *, kind: AccountKind, subject: str, now: datetime) -> IssuedAccount:
    """Create or rotate the account of a box, a site's gateway or a service; new password.

    Rotating replaces the hash: the old password stops working at the next
    ``mqtt-auth write`` and broker reload.
    """
    try:
        username = account_username(kind, subject)
    except (ValueError, TopicError) as exc:
        raise AccountError(str(exc)) from exc
    if not _subject_known(conn, kind, subject):
        what = "edge box" if kind is AccountKind.EDGE else "site"
        raise AccountError(f"no {what} {subject!r} in the registry (run registry sync first)")
    password = new_password()
    conn.execute(
        """INSERT INTO mqtt_accounts (username, kind, subject, password_hash, created_at,
                                      rotated_at)
           VALUES (%(u)s, %(k)s, %(s)s, %(h)s, %(now)s, %(now)s)
           ON CONFLICT (username) DO UPDATE SET password_hash = EXCLUDED.password_hash,
               rotated_at = EXCLUDED.rotated_at, revoked_at = NULL""",
        {"u": username, "k": kind.value, "s": subject, "h": hash_password(password), "now": now},
    )
    return IssuedAccount(username=username, password=password)


def revoke_account(conn: Conn, *, username: str, now: datetime) -> bool:
    """Mark an account revoked (gone from the next rendering); False when there is none live."""
    row = conn.execute(
        "UPDATE mqtt_accounts SET revoked_at = %s WHERE username = %s AND revoked_at IS NULL "
        "RETURNING 1",
        (now, username),
    ).fetchone()
    return row is not None


def live_accounts(conn: Conn) -> list[Account]:
    """Every account not revoked."""
    rows = conn.execute(
        "SELECT username, kind, subject, password_hash FROM mqtt_accounts "
        "WHERE revoked_at IS NULL ORDER BY username"
    ).fetchall()
    return [Account(r[0], AccountKind(r[1]), r[2], r[3]) for r in rows]


def list_accounts(conn: Conn) -> list[tuple[Any, ...]]:
    """Every account with its times (no hashes), for ``mqtt-auth list``."""
    return conn.execute(
        "SELECT username, kind, subject, created_at, rotated_at, revoked_at "
        "FROM mqtt_accounts ORDER BY username"
    ).fetchall()


def registry_view(conn: Conn) -> RegistryView:
    """Sites, the site of every edge box and the Zigbee names of each site's active sensors
    and of its cabinets' smart plugs."""
    sites = frozenset(str(r[0]) for r in conn.execute("SELECT id FROM sites").fetchall())
    boxes = {str(r[0]): str(r[1]) for r in conn.execute("SELECT id, site_id FROM edge_boxes")}
    zigbee: dict[str, list[str]] = {}
    for site, name in conn.execute(
        "SELECT site_id, zigbee_name FROM sensors WHERE active AND zigbee_name IS NOT NULL "
        "ORDER BY site_id, zigbee_name"
    ).fetchall():
        zigbee.setdefault(str(site), []).append(str(name))
    for site, name in conn.execute(  # disinfection cabinets' smart plugs
        "SELECT c.site_id, c.plug_zigbee_name FROM disinfection_cabinets c "
        "JOIN sensors s ON s.id = c.sensor_id "
        "WHERE s.active AND c.plug_zigbee_name IS NOT NULL ORDER BY 1, 2"
    ).fetchall():
        zigbee.setdefault(str(site), []).append(str(name))
    return RegistryView(
        sites=sites, box_site=boxes, site_zigbee={k: tuple(v) for k, v in zigbee.items()}
    )
