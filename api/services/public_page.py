"""The facts of a canteen's public page (阳光公示), section by section, as the region publishes.

Every figure is about the canteen, never a person: no names, phones, user or person ids,
tester or receiving person. A section the region switched off is None (not computed).

- Inspection: the latest finished inspection, its date and kind, and the result in the
  wording of the supervision-result notices: 符合 (no item failed), 基本符合 (only tier-3
  items failed), 不符合 (a tier-1 or tier-2 item failed).
- Rectification: tickets of the last ``RECTIFICATION_DAYS`` (90) days: opened, closed,
  still open, overdue now.
- Cold chain: fridges, freezers and sample fridges over the last ``COLD_CHAIN_DAYS`` (30)
  days: alarms, minutes outside their limits, and compliance = 1 − those minutes / (devices
  × the window's minutes).
- Disinfection: the meal services of the last ``DISINFECTION_DAYS`` (30) days whose window
  was judged by the disinfection rule (``disinfection_checks``, the same judgements that open
  the 餐具未消毒 / 餐具消毒不达标 tickets): how many, how many had every cabinet disinfect
  by a valid cycle in the window, the share, windows missed and failed, and the days with
  one of those.
- Rapid tests: samples of the canteen's purchases tested in the last ``RAPID_DAYS`` (30)
  days: date, product, item, result.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import psycopg

from api.services.publication import PublicationPublic
from api.services.rapid_tests import ITEM_LABELS
from bkcommon.localtime import region_zone_name

Conn = psycopg.Connection[Any]

RECTIFICATION_DAYS = 90
COLD_CHAIN_DAYS = 30
DISINFECTION_DAYS = 30
RAPID_DAYS = 30
COLD_PROFILES = ("fridge", "freezer", "sample_fridge")
_KIND_ZH = {"routine": "日常检查", "special": "专项检查", "joint": "联合检查",
            "random": "双随机抽查", "public_spot": "百姓点检"}  # fmt: skip


@dataclass(frozen=True, slots=True)
class InspectionFacts:
    """The latest inspection's public result."""

    on: date
    kind: str
    result: str
    failed_items: int


@dataclass(frozen=True, slots=True)
class RectificationFacts:
    """Tickets of the last 90 days."""

    opened: int
    closed: int
    open_now: int
    overdue_now: int


@dataclass(frozen=True, slots=True)
class ColdChainFacts:
    """Cold-chain compliance over the last 30 days."""

    devices: int
    alarms: int
    minutes_out: int
    compliance: float | None


@dataclass(frozen=True, slots=True)
class DisinfectionFacts:
    """Tableware disinfection after the meal services of the last 30 days."""

    meals: int
    """Meal services judged (a date and a meal; one judgement per cabinet)."""
    meals_disinfected: int
    """Meal services where every cabinet completed a valid cycle within the window."""
    compliance: float | None
    """``meals_disinfected / meals``; None without a judged meal service."""
    missed: int
    """Cabinet windows with no cycle at all."""
    failed: int
    """Cabinet windows whose cycle was too cool, too short, unfinished or late."""
    days_not_done: int
    """Days with a missed or failed window."""


@dataclass(frozen=True, slots=True)
class RapidFacts:
    """One recent rapid test, as published."""

    on: date
    product: str
    item: str
    result: str


@dataclass(frozen=True, slots=True)
class PublicPage:
    """What the public page of one canteen shows."""

    site_id: str
    site_name: str
    inspection: InspectionFacts | None
    inspection_shown: bool
    rectification: RectificationFacts | None
    cold_chain: ColdChainFacts | None
    disinfection: DisinfectionFacts | None
    rapid_tests: list[RapidFacts] | None
    accept_complaints: bool


def build_page(
    conn: Conn, *, site_id: str, site_name: str, setting: PublicationPublic, now: datetime
) -> PublicPage:
    """The sections ``setting`` publishes, computed at ``now``."""
    return PublicPage(
        site_id=site_id,
        site_name=site_name,
        inspection=_inspection(conn, site_id) if setting.show_inspection else None,
        inspection_shown=setting.show_inspection,
        rectification=_rectification(conn, site_id, now) if setting.show_rectification else None,
        cold_chain=_cold_chain(conn, site_id, now) if setting.show_cold_chain else None,
        disinfection=_disinfection(conn, site_id, now) if setting.show_disinfection else None,
        rapid_tests=_rapid(conn, site_id, now) if setting.show_rapid_tests else None,
        accept_complaints=setting.accept_complaints,
    )


def _inspection(conn: Conn, site_id: str) -> InspectionFacts | None:
    row = conn.execute(
        """SELECT (i.finished_at AT TIME ZONE %(tz)s)::date, i.kind,
                  count(*) FILTER (WHERE it.result = 'fail' AND it.tier <= 2),
                  count(*) FILTER (WHERE it.result = 'fail')
           FROM inspections i LEFT JOIN inspection_items it ON it.inspection_id = i.id
           WHERE i.site_id = %(site)s AND i.finished_at IS NOT NULL
           GROUP BY i.id ORDER BY i.finished_at DESC, i.id DESC LIMIT 1""",
        {"site": site_id, "tz": region_zone_name()},
    ).fetchone()
    if row is None:
        return None
    serious, failed = int(row[2]), int(row[3])
    result = "不符合" if serious else "基本符合" if failed else "符合"
    return InspectionFacts(
        on=row[0], kind=_KIND_ZH.get(str(row[1]), str(row[1])), result=result, failed_items=failed
    )


def _rectification(conn: Conn, site_id: str, now: datetime) -> RectificationFacts:
    row = conn.execute(
        """SELECT count(*) FILTER (WHERE opened_at >= %(since)s),
                  count(*) FILTER (WHERE opened_at >= %(since)s AND status = 'closed'),
                  count(*) FILTER (WHERE status <> 'closed'),
                  count(*) FILTER (WHERE status <> 'closed' AND due_at < %(now)s)
           FROM tickets WHERE site_id = %(site)s""",
        {"site": site_id, "since": now - timedelta(days=RECTIFICATION_DAYS), "now": now},
    ).fetchone()
    assert row is not None
    return RectificationFacts(*(int(v) for v in row))


def _cold_chain(conn: Conn, site_id: str, now: datetime) -> ColdChainFacts:
    since = now - timedelta(days=COLD_CHAIN_DAYS)
    row = conn.execute(
        """WITH dev AS (SELECT id FROM sensors
                        WHERE site_id = %(site)s AND active AND profile = ANY(%(profiles)s))
           SELECT (SELECT count(*) FROM dev),
                  count(a.id),
                  coalesce(sum(extract(epoch FROM
                      least(coalesce(a.cleared_at, %(now)s), %(now)s)
                      - greatest(a.started_at, %(since)s))) / 60, 0)
           FROM alarms a
           WHERE a.site_id = %(site)s AND a.sensor_id IN (SELECT id FROM dev)
             AND a.rule IN ('temp_high', 'temp_low')
             AND a.started_at < %(now)s AND coalesce(a.cleared_at, %(now)s) > %(since)s""",
        {"site": site_id, "profiles": list(COLD_PROFILES), "since": since, "now": now},
    ).fetchone()
    assert row is not None
    devices, alarms, minutes = int(row[0]), int(row[1]), float(row[2])
    window = devices * COLD_CHAIN_DAYS * 24 * 60
    compliance = None if window == 0 else round(max(0.0, 1 - minutes / window), 4)
    return ColdChainFacts(devices, alarms, round(minutes), compliance)


def _disinfection(conn: Conn, site_id: str, now: datetime) -> DisinfectionFacts:
    """The disinfection rule's own judgements (``disinfection_checks``) of windows that closed
    in the last 30 days: nothing is judged again here."""
    row = conn.execute(
        """WITH k AS (SELECT service_date, meal, outcome FROM disinfection_checks
                      WHERE site_id = %(site)s
                        AND window_end > %(since)s AND window_end <= %(now)s),
                m AS (SELECT bool_and(outcome = 'done') AS ok FROM k GROUP BY service_date, meal)
           SELECT (SELECT count(*) FROM m),
                  (SELECT count(*) FROM m WHERE ok),
                  (SELECT count(*) FROM k WHERE outcome = 'missed'),
                  (SELECT count(*) FROM k WHERE outcome = 'failed'),
                  (SELECT count(DISTINCT service_date) FROM k WHERE outcome <> 'done')""",
        {"site": site_id, "since": now - timedelta(days=DISINFECTION_DAYS), "now": now},
    ).fetchone()
    assert row is not None
    meals, ok, missed, failed, days = (int(v) for v in row)
    compliance = None if meals == 0 else round(ok / meals, 4)
    return DisinfectionFacts(meals, ok, compliance, missed, failed, days)


def _rapid(conn: Conn, site_id: str, now: datetime) -> list[RapidFacts]:
    rows = conn.execute(
        """SELECT (tested_at AT TIME ZONE %(tz)s)::date, product, item, result
           FROM rapid_tests
           WHERE site_id = %(site)s AND tested_at >= %(from)s AND tested_at <= %(now)s
           ORDER BY tested_at DESC, id DESC LIMIT 50""",
        {
            "site": site_id,
            "from": now - timedelta(days=RAPID_DAYS),
            "now": now,
            "tz": region_zone_name(),
        },
    ).fetchall()
    return [
        RapidFacts(
            on=r[0],
            product=str(r[1]),
            item=ITEM_LABELS.get(str(r[2]), (str(r[2]),))[0],
            result="合格" if r[3] == "pass" else "不合格",
        )
        for r in rows
    ]
