"""Site queries: every canteen with its open tickets and active alarms."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row

from api.auth.scope import SiteScope
from api.schemas import SitePublic, SitesPublic

Conn = psycopg.Connection[Any]


def list_sites(*, conn: Conn, scope: SiteScope, region_id: str | None = None) -> SitesPublic:
    """Every site in scope (optionally of one region) with open/overdue tickets, active alarms."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            """SELECT s.id, s.region_id, s.name, s.address,
                      (SELECT count(*) FROM tickets t
                       WHERE t.site_id = s.id AND t.status <> 'closed') AS open_tickets,
                      (SELECT count(*) FROM tickets t WHERE t.site_id = s.id
                         AND t.status <> 'closed' AND t.due_at < now()) AS overdue_tickets,
                      (SELECT count(*) FROM alarms a
                       WHERE a.site_id = s.id AND a.status <> 'cleared') AS active_alarms
               FROM sites s
               WHERE (%(region)s::text IS NULL OR s.region_id = %(region)s)
                 AND """
            + scope.clause("s.id")
            + " ORDER BY s.id",
            {"region": region_id, **scope.params()},
        ).fetchall()
    return SitesPublic(data=[SitePublic.model_validate(r) for r in rows], count=len(rows))
