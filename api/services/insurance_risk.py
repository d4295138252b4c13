"""The insurer's risk record (风险记录): what an insurer reads of the canteens it covers.

One site's whole record (policies, incidents, score history) answers "tell me about this
canteen"; the list answers "which of my canteens need attention", so it is computed for every
insured canteen in one set-based query (``risk.compute``) instead of one request per canteen,
which an insurer covering hundreds of canteens could not wait for.
"""

from __future__ import annotations

from datetime import datetime
from typing import IO, Any

import psycopg
from pydantic import BaseModel, Field

from api.auth.scope import SiteScope
from api.services.insurance import IncidentPublic, PolicyPublic, list_incidents, list_policies
from api.services.risk import RiskPoint, RiskScore, RiskSettings, compute, history
from api.services.spreadsheet import write_table_csv, write_table_xlsx

Conn = psycopg.Connection[Any]


class RiskSummaryPublic(BaseModel):
    """The record behind one insured canteen's risk score, without its lists."""

    site_id: str
    site_name: str
    open_tickets: int
    overdue_tickets: int
    repeated_tickets: int
    excursion_min: float
    camera_uptime: float | None
    sensor_uptime: float | None
    inspection_fail_rate: float | None
    score: float
    window_days: float


class RiskRecordPublic(RiskSummaryPublic):
    """What an insurer sees of a site it insures: the record behind the risk score."""

    policies: list[PolicyPublic]
    incidents: list[IncidentPublic]
    history: list[RiskPoint]


class RiskRecordsPublic(BaseModel):
    """A page of the insured canteens in scope, the highest stored score first."""

    data: list[RiskSummaryPublic]
    total: int = Field(description="Insured canteens in scope, on every page.")
    limit: int | None = Field(description="The page size asked for (None: every canteen).")
    offset: int
    window_days: float = Field(description="The risk window the counts cover, in days.")


def _summary(s: RiskScore, name: str, window_days: float) -> RiskSummaryPublic:
    """The public summary of one computed score."""
    done = s.raw.items_passed + s.raw.items_failed
    return RiskSummaryPublic(
        site_id=s.site_id,
        site_name=name,
        open_tickets=s.raw.open_tickets,
        overdue_tickets=s.raw.overdue_tickets,
        repeated_tickets=s.raw.repeated_tickets,
        excursion_min=round(s.raw.excursion_min, 1),
        camera_uptime=s.raw.camera_uptime,
        sensor_uptime=s.raw.sensor_uptime,
        inspection_fail_rate=None if done == 0 else s.raw.items_failed / done,
        score=s.score,
        window_days=window_days,
    )


def _names(conn: Conn, site_ids: list[str]) -> dict[str, str]:
    """Site names by id, from one read."""
    rows = conn.execute("SELECT id, name FROM sites WHERE id = ANY(%s)", (site_ids,)).fetchall()
    return {str(r[0]): str(r[1]) for r in rows}


def risk_record(
    *,
    conn: Conn,
    site_id: str,
    scope: SiteScope,
    now: datetime,
    settings: RiskSettings,
    insurer: str | None = None,
) -> RiskRecordPublic | None:
    """The read-only risk record of one site; None when absent or out of scope. ``insurer``:
    the policies listed are that insurer's only."""
    if not scope.allows(site_id):
        return None
    scores = compute(conn=conn, now=now, scope=scope, settings=settings, site_id=site_id)
    if not scores:
        return None
    name = _names(conn, [site_id]).get(site_id, site_id)
    summary = _summary(scores[0], name, settings.window_days)
    return RiskRecordPublic(
        **summary.model_dump(),
        policies=list_policies(conn=conn, scope=scope, site_id=site_id, insurer=insurer),
        incidents=list_incidents(conn=conn, scope=scope, site_id=site_id, insurer=insurer),
        history=history(conn=conn, site_id=site_id, scope=scope),
    )


def risk_records(
    *,
    conn: Conn,
    scope: SiteScope,
    now: datetime,
    settings: RiskSettings,
    insurer: str | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> RiskRecordsPublic:
    """The risk summary of the canteens in scope that have a policy (``insurer``: a policy of
    that insurer), ordered by their latest stored score (``risk_current``, the overview's;
    the highest first, never scored last), a page of ``limit`` from ``offset``. The order
    comes from the stored scores so that a page costs one page of computing: the counts and
    the score shown are computed now, for the page's canteens only, in one query."""
    ordered = [
        (str(r[0]), str(r[1]))
        for r in conn.execute(
            f"""WITH insured AS (
                    SELECT DISTINCT site_id FROM policies
                    WHERE {scope.clause()} AND (%(insurer)s::text IS NULL OR insurer = %(insurer)s))
                SELECT s.id, s.name FROM insured i JOIN sites s ON s.id = i.site_id
                LEFT JOIN risk_current c ON c.site_id = s.id
                LEFT JOIN LATERAL (SELECT r.score FROM risk_scores r WHERE r.site_id = s.id
                                   ORDER BY r.computed_at DESC LIMIT 1) h ON c.site_id IS NULL
                ORDER BY coalesce(c.score, h.score) DESC NULLS LAST, s.name, s.id""",
            {"insurer": insurer, **scope.params()},
        ).fetchall()
    ]
    page = ordered[offset:] if limit is None else ordered[offset : offset + limit]
    out = RiskRecordsPublic(
        data=[], total=len(ordered), limit=limit, offset=offset, window_days=settings.window_days
    )
    if not page:
        return out
    # the page's sites were read through the caller's scope; narrow it to them
    only = SiteScope(all_sites=False, site_ids=tuple(sid for sid, _ in page))
    scores = {s.site_id: s for s in compute(conn=conn, now=now, scope=only, settings=settings)}
    out.data = [
        _summary(scores[sid], name, settings.window_days) for sid, name in page if sid in scores
    ]
    return out


RISK_COLUMNS: tuple[tuple[str, str], ...] = (
    ("食堂", "Canteen"),
    ("风险分", "Risk score"),
    ("待处理整改单", "Open tickets"),
    ("逾期整改单", "Overdue tickets"),
    ("重复发生", "Repeated tickets"),
    ("温度超标（分钟）", "Temperature excursion (min)"),
    ("传感器在线率（%）", "Sensor uptime (%)"),
    ("摄像头在线率（%）", "Camera uptime (%)"),
    ("检查不合格率（%）", "Inspection fail rate (%)"),
    ("统计期（天）", "Window (days)"),
)
"""The risk-record sheet's columns, in the reader's language (zh-CN, en)."""


def _pct(x: float | None) -> float | None:
    return None if x is None else round(x * 100, 1)


def write_risk_records(out: IO[bytes], records: RiskRecordsPublic, fmt: str, lang: str) -> None:
    """The risk records as a CSV (UTF-8 with BOM) or XLSX sheet into ``out``: names, not
    codes; rates as percentages; the worst first, as listed. Insurers price in spreadsheets."""
    header = [zh if lang == "zh-CN" else en for zh, en in RISK_COLUMNS]
    rows = (
        [
            r.site_name,
            round(r.score, 1),
            r.open_tickets,
            r.overdue_tickets,
            r.repeated_tickets,
            r.excursion_min,
            _pct(r.sensor_uptime),
            _pct(r.camera_uptime),
            _pct(r.inspection_fail_rate),
            r.window_days,
        ]
        for r in records.data
    )
    if fmt == "csv":
        write_table_csv(out, header, rows)
    else:
        write_table_xlsx(out, "风险记录" if lang == "zh-CN" else "Risk record", header, rows)
