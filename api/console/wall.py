"""The region wall screen's (大屏) numbers: counts at a glance and tickets per day by kind (rule).

Everything is scoped like every other read, computed in a few aggregate queries over
indexed columns (no per-site round trips), so the screen stays cheap to refresh.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from psycopg.rows import dict_row
from pydantic import BaseModel, Field

from api.auth.scope import SiteScope
from api.deps import Conn
from api.services.labels import SOURCE_LABELS

ONLINE_WITHIN = timedelta(minutes=30)
KINDS = tuple(SOURCE_LABELS)
"""Ticket sources, in the order the trend lists them."""


class WallKpis(BaseModel):
    """Counts at a glance over the user's sites."""

    sites: int
    sites_online: int = Field(description="Sites with a sensor reading or box report lately.")
    open_tickets: int
    overdue_tickets: int
    active_alarms: int
    rectification_rate: float | None = Field(
        description="Tickets opened in the window that are closed now, as a share."
    )
    mean_hours_to_rectify: float | None = Field(
        description="Mean hours from opening to closing, of tickets closed in the window."
    )


class WallTrend(BaseModel):
    """Tickets opened per local day, by kind (the rule they follow), over the window.

    Only kinds with a ticket in the window, most tickets first; ``totals`` is what the
    ledger lists filtered by that kind and ``opened_from=since``.
    """

    days: list[date]
    since: datetime = Field(description="The window's first local midnight.")
    by_kind: dict[str, list[int]] = Field(description="Rule → tickets opened on each day.")
    totals: dict[str, int] = Field(description="Rule → tickets opened in the window.")


class WallPublic(BaseModel):
    """The wall screen's data for a window of ``days``."""

    days: int
    kpis: WallKpis
    trend: WallTrend


def wall_data(*, conn: Conn, scope: SiteScope, now: datetime, days: int, tz: str) -> WallPublic:
    """KPIs and the per-day trend of the last ``days`` local days (today included)."""
    zone = ZoneInfo(tz)
    today = now.astimezone(zone).date()
    first = today - timedelta(days=days - 1)
    since = datetime.combine(first, datetime.min.time(), zone)
    params: dict[str, Any] = {
        **scope.params(),
        "now": now,
        "since": since,
        "online_since": now - ONLINE_WITHIN,
        "tz": tz,
    }
    with conn.cursor(row_factory=dict_row) as cur:
        k = cur.execute(
            f"""SELECT
                  (SELECT count(*) FROM sites s WHERE {scope.clause("s.id")}) AS sites,
                  (SELECT count(*) FROM sites s WHERE {scope.clause("s.id")} AND (
                      EXISTS (SELECT 1 FROM sensors x WHERE x.site_id = s.id
                              AND x.last_received_at >= %(online_since)s)
                      OR EXISTS (SELECT 1 FROM edge_boxes b WHERE b.site_id = s.id
                                 AND b.online AND b.status_at >= %(online_since)s)))
                    AS sites_online,
                  (SELECT count(*) FROM tickets t WHERE t.status <> 'closed'
                     AND {scope.clause("t.site_id")}) AS open_tickets,
                  (SELECT count(*) FROM tickets t WHERE t.status <> 'closed'
                     AND t.due_at < %(now)s AND {scope.clause("t.site_id")}) AS overdue_tickets,
                  (SELECT count(*) FROM alarms a WHERE a.status <> 'cleared'
                     AND {scope.clause("a.site_id")}) AS active_alarms""",
            params,
        ).fetchone()
        r = cur.execute(
            f"""SELECT count(*) FILTER (WHERE status = 'closed') AS closed, count(*) AS opened
                FROM tickets WHERE opened_at >= %(since)s AND {scope.clause("site_id")}""",
            params,
        ).fetchone()
        m = cur.execute(
            f"""SELECT avg(extract(epoch FROM closed_at - opened_at)) / 3600 AS hours
                FROM tickets WHERE status = 'closed' AND closed_at >= %(since)s
                  AND {scope.clause("site_id")}""",
            params,
        ).fetchone()
        rows = cur.execute(
            f"""SELECT (opened_at AT TIME ZONE %(tz)s)::date AS day, rule, count(*) AS n
                FROM tickets WHERE opened_at >= %(since)s AND {scope.clause("site_id")}
                GROUP BY 1, 2""",
            params,
        ).fetchall()
    if k is None or r is None or m is None:  # aggregates always answer one row
        raise RuntimeError("an aggregate query returned no row")
    day_list = [first + timedelta(days=i) for i in range(days)]
    index = {d: i for i, d in enumerate(day_list)}
    totals: dict[str, int] = {}
    for row in rows:
        totals[row["rule"]] = totals.get(row["rule"], 0) + int(row["n"])
    order = sorted(totals, key=lambda rule: (-totals[rule], rule))
    by_kind = {rule: [0] * days for rule in order}
    for row in rows:
        if row["day"] in index:  # (a ticket dated after today, a clock ahead: in the total only)
            by_kind[row["rule"]][index[row["day"]]] += int(row["n"])
    return WallPublic(
        days=days,
        kpis=WallKpis(
            sites=k["sites"],
            sites_online=k["sites_online"],
            open_tickets=k["open_tickets"],
            overdue_tickets=k["overdue_tickets"],
            active_alarms=k["active_alarms"],
            rectification_rate=(r["closed"] / r["opened"]) if r["opened"] else None,
            mean_hours_to_rectify=float(m["hours"]) if m["hours"] is not None else None,
        ),
        trend=WallTrend(
            days=day_list,
            since=since,
            by_kind=by_kind,
            totals={rule: totals[rule] for rule in order},
        ),
    )
