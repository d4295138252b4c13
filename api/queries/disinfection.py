"""Disinfection ledger queries: cycles and judged meal windows of your sites."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import psycopg
from psycopg.rows import dict_row

from api.auth.scope import SiteScope
from api.schemas_disinfection import (
    CheckPublic,
    ChecksPublic,
    CyclePublic,
    CyclesPublic,
    Outcome,
    Verdict,
)
from bkcommon.localtime import region_zone_name

Conn = psycopg.Connection[Any]


@dataclass(frozen=True, slots=True)
class LedgerFilter:
    """What a ledger request selects; dates are local dates of the site, both ends included."""

    site_id: str | None = None
    sensor_id: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    verdict: Verdict | None = None

    def params(self) -> dict[str, object]:
        """Query parameters of :data:`_CYCLE_WHERE`."""
        return {
            "site": self.site_id,
            "sensor": self.sensor_id,
            "dfrom": self.date_from,
            "dto": self.date_to,
            "verdict": self.verdict.value if self.verdict else None,
            "tz": region_zone_name(),
        }


_CYCLE_FROM = """
FROM disinfection_cycles AS c
JOIN sites AS st ON st.id = c.site_id
LEFT JOIN sensors AS sn ON sn.id = c.sensor_id
LEFT JOIN disinfection_cabinets AS cab ON cab.sensor_id = c.sensor_id
LEFT JOIN meal_schedules AS ms ON ms.site_id = c.site_id
CROSS JOIN LATERAL (
    SELECT (c.started_at AT TIME ZONE coalesce(ms.timezone, %(tz)s))::date AS day
) AS d
"""

_CYCLE_WHERE = """
WHERE (%(site)s::text IS NULL OR c.site_id = %(site)s)
  AND (%(sensor)s::text IS NULL OR c.sensor_id = %(sensor)s)
  AND (%(dfrom)s::date IS NULL OR d.day >= %(dfrom)s)
  AND (%(dto)s::date IS NULL OR d.day <= %(dto)s)
  AND (%(verdict)s::text IS NULL OR c.verdict = %(verdict)s)
  AND {scope}
"""

_CYCLE_SELECT = """
SELECT c.id, c.site_id, st.name AS site_name, c.sensor_id,
       coalesce(nullif(sn.name, ''), c.sensor_id) AS sensor_name, cab.cabinet_type, d.day,
       c.started_at, c.ended_at, extract(epoch FROM c.ended_at - c.started_at) AS duration_s,
       c.peak_c, c.held_s, c.verdict, c.min_temp_c, c.min_hold_s, c.judged_by, c.on_s, c.peak_w
"""


def list_cycles(
    *, conn: Conn, scope: SiteScope, filt: LedgerFilter, limit: int, offset: int
) -> CyclesPublic:
    """One page of cycles matching ``filt``, newest first, only of ``scope``'s sites."""
    where = _CYCLE_WHERE.format(scope=scope.clause("c.site_id"))
    params = {**filt.params(), **scope.params(), "limit": limit, "offset": offset}
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            _CYCLE_SELECT + _CYCLE_FROM + where + " ORDER BY c.started_at DESC, c.id DESC "
            "LIMIT %(limit)s OFFSET %(offset)s",
            params,
        ).fetchall()
        total = cur.execute("SELECT count(*) AS n " + _CYCLE_FROM + where, params).fetchone()
    return CyclesPublic(
        data=[CyclePublic.model_validate(r) for r in rows],
        count=int(total["n"]) if total else 0,
        limit=limit,
        offset=offset,
    )


def iter_cycles(
    *, conn: Conn, scope: SiteScope, filt: LedgerFilter, max_rows: int
) -> Iterator[CyclePublic]:
    """Cycles matching ``filt`` for an export: per site and day, oldest first."""
    where = _CYCLE_WHERE.format(scope=scope.clause("c.site_id"))
    params = {**filt.params(), **scope.params(), "limit": max_rows}
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            _CYCLE_SELECT + _CYCLE_FROM + where + " ORDER BY c.site_id, d.day, c.started_at, "
            "c.id LIMIT %(limit)s",
            params,
        )
        for r in cur:
            yield CyclePublic.model_validate(r)


_CHECK_WHERE = """
WHERE (%(site)s::text IS NULL OR k.site_id = %(site)s)
  AND (%(sensor)s::text IS NULL OR k.sensor_id = %(sensor)s)
  AND (%(dfrom)s::date IS NULL OR k.service_date >= %(dfrom)s)
  AND (%(dto)s::date IS NULL OR k.service_date <= %(dto)s)
  AND (%(outcome)s::text IS NULL OR k.outcome = %(outcome)s)
  AND {scope}
"""


def list_checks(
    *,
    conn: Conn,
    scope: SiteScope,
    filt: LedgerFilter,
    outcome: Outcome | None,
    limit: int,
    offset: int,
) -> ChecksPublic:
    """One page of judged meal windows, newest first, with the ticket a finding opened."""
    where = _CHECK_WHERE.format(scope=scope.clause("k.site_id"))
    params = {
        **filt.params(),
        **scope.params(),
        "outcome": outcome.value if outcome else None,
        "limit": limit,
        "offset": offset,
    }
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            """SELECT k.site_id, k.sensor_id,
                      coalesce(nullif(sn.name, ''), k.sensor_id) AS sensor_name,
                      k.service_date, k.meal, k.meal_start, k.meal_end,
                      k.window_end, k.outcome, k.cycle_id, f.ticket_id, tk.ticket_no
               FROM disinfection_checks AS k
               LEFT JOIN sensors AS sn ON sn.id = k.sensor_id
               LEFT JOIN LATERAL (
                   SELECT f.ticket_id FROM findings AS f
                   WHERE f.finding_key = 'disinfection:' || k.sensor_id || ':'
                         || k.service_date || ':' || k.meal || ':' || k.outcome) AS f ON true
               LEFT JOIN tickets AS tk ON tk.id = f.ticket_id """
            + where
            + " ORDER BY k.window_end DESC, k.sensor_id LIMIT %(limit)s OFFSET %(offset)s",
            params,
        ).fetchall()
        total = cur.execute(
            "SELECT count(*) AS n FROM disinfection_checks AS k " + where, params
        ).fetchone()
    return ChecksPublic(
        data=[CheckPublic.model_validate(r) for r in rows],
        count=int(total["n"]) if total else 0,
        limit=limit,
        offset=offset,
    )


def site_visible(*, conn: Conn, scope: SiteScope, site_id: str) -> bool:
    """True when the site exists and is one of ``scope``'s."""
    row = conn.execute(
        "SELECT 1 FROM sites WHERE id = %(id)s AND " + scope.clause("id"),
        {"id": site_id, **scope.params()},
    ).fetchone()
    return row is not None
