"""Region statistics of rapid tests per month: batches, pass rate, failures by item and supplier.

A month is a calendar month in the region's time zone (``BK_TIME_ZONE``, by default
Asia/Shanghai), the way the region publishes its figures. A *batch* is one sample (site +
sample number) whatever the number of items it was tested for; it passes when every item
passed. Pass rate = passed batches / batches. Only sites in the caller's scope count: a
regulator sees their region tree.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import psycopg
from pydantic import BaseModel

from api.auth.scope import SiteScope
from api.services.rapid_tests import ITEM_LABELS
from bkcommon.localtime import region_zone_name

Conn = psycopg.Connection[Any]


class CountPublic(BaseModel):
    """Failed batches of one item or supplier."""

    key: str
    name: str
    failed: int


class MonthStatsPublic(BaseModel):
    """One month of rapid tests."""

    month: str
    batches: int
    passed: int
    failed: int
    pass_rate: float | None
    failures_by_item: list[CountPublic]
    failures_by_supplier: list[CountPublic]


_BATCHES = """
WITH t AS (
    SELECT to_char(tested_at AT TIME ZONE %(tz)s, 'YYYY-MM') AS month,
           site_id, sample_no, result, item, supplier_licence
    FROM rapid_tests
    WHERE {scope}
      AND (tested_at AT TIME ZONE %(tz)s)::date >= %(from)s
      AND (tested_at AT TIME ZONE %(tz)s)::date < %(to)s
)
"""


def monthly_stats(
    conn: Conn, *, scope: SiteScope, from_month: date, to_month: date
) -> list[MonthStatsPublic]:
    """Statistics of each month from ``from_month`` to ``to_month`` (both included, first days)."""
    end = date(to_month.year + to_month.month // 12, to_month.month % 12 + 1, 1)
    params = {
        "from": from_month.replace(day=1),
        "to": end,
        "tz": region_zone_name(),
        **scope.params(),
    }
    head = _BATCHES.format(scope=scope.clause("site_id"))
    months = conn.execute(
        head
        + """SELECT month, count(*) AS batches,
                    count(*) FILTER (WHERE NOT failed) AS passed,
                    count(*) FILTER (WHERE failed) AS failed
             FROM (SELECT month, site_id, sample_no, bool_or(result = 'fail') AS failed
                   FROM t GROUP BY month, site_id, sample_no) b
             GROUP BY month ORDER BY month""",
        params,
    ).fetchall()
    by_item = conn.execute(
        head
        + """SELECT month, item, count(DISTINCT (site_id, sample_no)) FROM t
             WHERE result = 'fail' GROUP BY month, item ORDER BY month, 3 DESC, item""",
        params,
    ).fetchall()
    by_supplier = conn.execute(
        head
        + """SELECT month, coalesce(t.supplier_licence, ''), coalesce(s.name, '未知 unknown'),
                    count(DISTINCT (site_id, sample_no))
             FROM t LEFT JOIN suppliers s ON s.licence_no = t.supplier_licence
             WHERE result = 'fail'
             GROUP BY month, t.supplier_licence, s.name ORDER BY month, 4 DESC, 2""",
        params,
    ).fetchall()
    out: list[MonthStatsPublic] = []
    for month, batches, passed, failed in months:
        out.append(
            MonthStatsPublic(
                month=str(month),
                batches=int(batches),
                passed=int(passed),
                failed=int(failed),
                pass_rate=round(int(passed) / int(batches), 4) if batches else None,
                failures_by_item=[
                    CountPublic(
                        key=str(i), name=ITEM_LABELS.get(str(i), (str(i),))[0], failed=int(n)
                    )
                    for m, i, n in by_item
                    if m == month
                ],
                failures_by_supplier=[
                    CountPublic(key=str(lic), name=str(name), failed=int(n))
                    for m, lic, name, n in by_supplier
                    if m == month
                ],
            )
        )
    return out
