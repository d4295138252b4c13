"""Who may manage which users, and grant which roles: admins everything, regulators their region.

A regulator manages the users whose canteens all lie in its region (its own region and the
regions below it): officers and directors of those canteens, and regulators and inspectors
(执法检查人员) of those regions. It may grant only what it holds itself or less: an officer or
director of canteens in its region, a regulator or an inspector of its region or one below.
Never an admin, an insurer (whose scope follows its policies, wherever they are), a device,
or anything reaching another region.

Refusals carry a ``reason`` (a stable code the console words in the reader's language) and
an English sentence; a user outside the regulator's region is "not found", as any record
outside one's scope is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from api.auth.passwords import hash_password
from api.auth.resolve import region_tree
from api.auth.scope import Principal, Role
from api.auth.users import UserError, audit, revoke_live_tokens
from bkcommon.errors import BrightKitchenError

Conn = psycopg.Connection[Any]

# Roles a regulator may grant (within its region); an admin grants every role.
REGULATOR_GRANTS = (Role.REGULATOR, Role.INSPECTOR, Role.OFFICER, Role.DIRECTOR)
CANTEEN_ROLES = (Role.OFFICER, Role.DIRECTOR)
REGION_ROLES = (Role.REGULATOR, Role.INSPECTOR)  # scoped by a region and the regions below


class UserRefusedError(BrightKitchenError):
    """The caller may not do this to this user; ``reason`` is a code the console words."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Grant:
    """What a user is (to be): role and scope anchors."""

    role: Role
    region_id: str | None
    person_id: str | None
    insurer: str | None
    site_ids: tuple[str, ...]


def sites_in(conn: Conn, regions: set[str]) -> set[str]:
    """The sites of ``regions``."""
    rows = conn.execute(
        "SELECT id FROM sites WHERE region_id = ANY(%s)", (sorted(regions),)
    ).fetchall()
    return {str(r[0]) for r in rows}


def person_sites(conn: Conn, person_id: str | None) -> set[str]:
    """The canteens ``person_id`` is named officer or director of."""
    if not person_id:
        return set()
    rows = conn.execute(
        """SELECT site_id FROM site_people
           WHERE person_id = %s AND role IN ('officer', 'director')""",
        (person_id,),
    ).fetchall()
    return {str(r[0]) for r in rows}


def _in_region(grant: Grant, people_sites: set[str], regions: set[str], sites: set[str]) -> bool:
    """True when ``grant`` (whose person has ``people_sites``) stays in ``regions``/``sites``."""
    if grant.role in REGION_ROLES:
        return grant.region_id in regions and not (set(grant.site_ids) - sites)
    if grant.role in CANTEEN_ROLES:
        reach = set(grant.site_ids) | people_sites
        return bool(reach) and reach <= sites
    return False


def check_grant(conn: Conn, actor: Principal, grant: Grant) -> None:
    """Refuse (``UserRefusedError``) a grant beyond what ``actor`` may give; admins may all."""
    if actor.role is Role.ADMIN:
        return
    if actor.role is not Role.REGULATOR:
        raise UserRefusedError("users_role", f"role {actor.role.value} may not manage users")
    if grant.role is Role.ADMIN:
        raise UserRefusedError("users_grant_admin", "only an admin may grant the admin role")
    if grant.role not in REGULATOR_GRANTS:
        raise UserRefusedError(
            "users_grant_role",
            f"a regulator may not grant the {grant.role.value} role; an admin creates it",
        )
    regions = region_tree(conn, actor.region_id)
    sites = sites_in(conn, regions)
    if grant.role in REGION_ROLES and grant.region_id not in regions:
        raise UserRefusedError(
            "users_other_region",
            f"a regulator may appoint {grant.role.value}s of its own region only",
        )
    if set(grant.site_ids) - sites:
        raise UserRefusedError("users_site_outside", "a chosen canteen is outside your region")
    if grant.role in CANTEEN_ROLES:
        people = person_sites(conn, grant.person_id)
        if people - sites:
            raise UserRefusedError(
                "users_person_outside", "this person's canteens are not all in your region"
            )
        if not (people | set(grant.site_ids)):
            raise UserError(f"choose at least one canteen of your region for the {grant.role}")


def keep_an_admin(conn: Conn, row: dict[str, Any], *, still_admin: bool) -> None:
    """Refuse (``UserRefusedError``) taking the admin role or access from the last active admin."""
    if row["role"] != Role.ADMIN.value or not row["active"] or still_admin:
        return
    others = conn.execute(
        "SELECT count(*) FROM users WHERE role = 'admin' AND active AND id <> %s", (row["id"],)
    ).fetchone()
    if others is None or int(others[0]) == 0:
        raise UserRefusedError(
            "users_last_admin", "this is the last active admin: make another admin first"
        )


def _grant_of(row: dict[str, Any]) -> Grant:
    return Grant(
        role=Role(row["role"]),
        region_id=row["region_id"],
        person_id=row["person_id"],
        insurer=row["insurer"],
        site_ids=tuple(row["site_ids"]),
    )


def manageable(conn: Conn, actor: Principal, row: dict[str, Any]) -> bool:
    """True when ``actor`` may see and change the user of ``row`` (a ``list_users`` row)."""
    if actor.role is Role.ADMIN:
        return True
    if actor.role is not Role.REGULATOR:
        return False
    regions = region_tree(conn, actor.region_id)
    reach = set(row.get("person_site_ids") or ())
    return _in_region(_grant_of(row), reach, regions, sites_in(conn, regions))


def visible_users(conn: Conn, actor: Principal, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows of ``rows`` that ``actor`` manages (all for an admin)."""
    if actor.role is Role.ADMIN:
        return rows
    if actor.role is not Role.REGULATOR:
        return []
    regions = region_tree(conn, actor.region_id)
    sites = sites_in(conn, regions)
    return [
        r
        for r in rows
        if _in_region(_grant_of(r), set(r.get("person_site_ids") or ()), regions, sites)
    ]


def validate_grant(grant: Grant) -> None:
    """The anchors each role needs (as ``create_user`` checks); ``UserError`` (422) if not."""
    if grant.role in REGION_ROLES and not grant.region_id:
        raise UserError(f"a {grant.role.value} needs a region")
    if grant.role is Role.INSURER and not grant.insurer:
        raise UserError("an insurer needs an insurer")
    if grant.role in CANTEEN_ROLES and not (grant.person_id or grant.site_ids):
        raise UserError(f"a {grant.role.value} needs a person or a site")
    if grant.role is Role.DEVICE:
        raise UserError("devices are created and changed with /users/devices")


def update_user(conn: Conn, *, username: str, grant: Grant, actor: str) -> None:
    """Set a user's role, anchors and site grants (replacing them); audited ``user.update``."""
    validate_grant(grant)
    try:
        with conn.transaction():
            row = conn.execute(
                """UPDATE users SET role = %s, region_id = %s, person_id = %s, insurer = %s
                   WHERE username = %s RETURNING id""",
                (grant.role.value, grant.region_id, grant.person_id, grant.insurer, username),
            ).fetchone()
            if row is None:
                raise UserError(f"user {username!r} not found")
            conn.execute("DELETE FROM user_sites WHERE user_id = %s", (row[0],))
            for site_id in grant.site_ids:
                conn.execute(
                    "INSERT INTO user_sites (user_id, site_id) VALUES (%s, %s)", (row[0], site_id)
                )
            audit(
                conn,
                actor=actor,
                action="user.update",
                target=f"user:{username}",
                data={
                    "role": grant.role.value,
                    "region": grant.region_id,
                    "person": grant.person_id,
                    "sites": list(grant.site_ids),
                },
            )
    except psycopg.errors.ForeignKeyViolation as exc:
        raise UserError(f"unknown region, person or site: {exc.diag.message_detail}") from exc


def reset_password(conn: Conn, *, username: str, password: str, actor: str, now: datetime) -> int:
    """Set a new password, lift a lockout and end every session; the tokens revoked."""
    with conn.transaction():
        row = conn.execute(
            """UPDATE users SET password_hash = %s, failed_logins = 0, locked_until = NULL
               WHERE username = %s AND role <> 'device' RETURNING id""",
            (hash_password(password), username),
        ).fetchone()
        if row is None:
            raise UserError(f"user {username!r} has no password to reset")
        ended = revoke_live_tokens(conn, user_id=row[0], now=now)
        audit(
            conn,
            actor=actor,
            action="user.password_reset",
            target=f"user:{username}",
            data={"tokens": ended},
        )
    return len(ended)


def grant_options(conn: Conn, actor: Principal) -> dict[str, Any]:
    """What ``actor`` may grant: roles, regions (id, name) and canteens (id, name, region)."""
    with conn.cursor(row_factory=dict_row) as cur:
        if actor.role is Role.ADMIN:
            regions = cur.execute("SELECT id, name FROM regions ORDER BY name, id").fetchall()
            sites = cur.execute(
                "SELECT id, name, region_id FROM sites ORDER BY name, id"
            ).fetchall()
            roles = [r.value for r in Role if r is not Role.DEVICE]
        else:
            tree = sorted(region_tree(conn, actor.region_id))
            regions = cur.execute(
                "SELECT id, name FROM regions WHERE id = ANY(%s) ORDER BY name, id", (tree,)
            ).fetchall()
            sites = cur.execute(
                """SELECT id, name, region_id FROM sites WHERE region_id = ANY(%s)
                   ORDER BY name, id""",
                (tree,),
            ).fetchall()
            roles = [r.value for r in REGULATOR_GRANTS]
    return {"roles": roles, "regions": regions, "sites": sites}
