"""Scope resolution: which sites a principal may see, computed from the registry."""

from __future__ import annotations

from typing import Any

import psycopg

from api.auth.scope import Principal, Role, SiteScope

Conn = psycopg.Connection[Any]

_REGION_SITES = """
WITH RECURSIVE tree(id) AS (
    SELECT id FROM regions WHERE id = %(region)s
    UNION
    SELECT r.id FROM regions r JOIN tree ON r.parent_id = tree.id
)
SELECT s.id FROM sites s WHERE s.region_id IN (SELECT id FROM tree)
UNION
SELECT us.site_id FROM user_sites us WHERE us.user_id = %(user)s
"""

_PERSON_SITES = """
SELECT sp.site_id FROM site_people sp
WHERE sp.person_id = %(person)s AND sp.role IN ('officer', 'director')
UNION
SELECT us.site_id FROM user_sites us WHERE us.user_id = %(user)s
"""

_GRANTED_SITES = "SELECT us.site_id FROM user_sites us WHERE us.user_id = %(user)s"

_POLICY_SITES = "SELECT p.site_id FROM policies p WHERE p.insurer = %(insurer)s"


def region_tree(conn: Conn, region_id: str | None) -> set[str]:
    """``region_id`` and every region below it (empty for no region or an unknown one)."""
    if not region_id:
        return set()
    rows = conn.execute(
        """WITH RECURSIVE tree(id) AS (
               SELECT id FROM regions WHERE id = %s
               UNION SELECT r.id FROM regions r JOIN tree ON r.parent_id = tree.id)
           SELECT id FROM tree""",
        (region_id,),
    ).fetchall()
    return {str(r[0]) for r in rows}


def resolve_scope(conn: Conn, principal: Principal) -> SiteScope:
    """The sites ``principal`` may see: admin all; others what region, person or grants give."""
    if principal.role is Role.ADMIN:
        return SiteScope.everything()
    params: dict[str, object] = {
        "user": int(principal.user_id),
        "region": principal.region_id,
        "person": principal.person_id,
        "insurer": principal.insurer,
    }
    if principal.role in (Role.REGULATOR, Role.INSPECTOR):
        query = _REGION_SITES
    elif principal.role in (Role.OFFICER, Role.DIRECTOR):
        query = _PERSON_SITES
    elif principal.role is Role.INSURER and _has_policies(conn):
        query = _GRANTED_SITES + " UNION " + _POLICY_SITES
    else:  # insurer before policies exist, device
        query = _GRANTED_SITES
    rows = conn.execute(query, params).fetchall()
    return SiteScope(all_sites=False, site_ids=tuple(sorted(str(r[0]) for r in rows)))


def _has_policies(conn: Conn) -> bool:
    """True once the insurance migration has created ``policies`` (with an insurer column)."""
    row = conn.execute(
        """SELECT 1 FROM information_schema.columns
           WHERE table_schema = current_schema() AND table_name = 'policies'
             AND column_name = 'insurer'"""
    ).fetchone()
    return row is not None
