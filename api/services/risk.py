"""The risk score of a site: 0 (good) .. 100 (bad), from its record over a window.

Formula (also in docs/risk-score.md). Over the window ``W`` (default 90 days) ending now:

====================  ===================================================================  ====
component             raw value                                                            norm
====================  ===================================================================  ====
overdue               tickets active in W (opened before now, not closed before W began)    n/5
                      whose deadline passed before they closed (or before now)
repeated              tickets active in W with more than one occurrence                     n/5
excursion             minutes of temp_high / temp_low alarms inside W (started_at ..        m/1440
                      cleared_at, or now while active), summed over sensors
sensor downtime       minutes of active sensors' sensor_offline alarms inside W /            as is
                      (active sensors × W)
camera downtime       minutes of camera_offline alarms inside W / (cameras × W)             as is
inspection fail rate  failed / (passed + failed) items of inspections started in W           as is
====================  ===================================================================  ====

Each normalised component ``c_i`` is clipped to 0..1 (the caps 5, 5, 1440 are settings).
``score = 100 × Σ w_i c_i / Σ w_i`` with default weights overdue 0.25, repeated 0.15,
excursion 0.20, sensor 0.10, camera 0.10, inspection 0.20 (``BK_RISK_*``). A site with no
sensors (cameras, inspections) gets 0 for that component: no record is not a bad record.
Scores are stored daily in ``risk_scores`` (the worker and ``brightkitchen api risk``).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from api.auth.scope import SiteScope

logger = logging.getLogger(__name__)

Conn = psycopg.Connection[Any]

RISK_CHANNEL = "bk_risk"


class RiskSettings(BaseSettings):
    """Window, weights and caps of the risk score (environment prefix ``BK_RISK_``)."""

    model_config = SettingsConfigDict(env_prefix="BK_RISK_", extra="ignore")

    window_days: float = Field(default=90.0, gt=0, le=3650)
    interval_h: float = Field(default=24.0, gt=0, le=24 * 31, description="Stored how often.")
    refresh_min: float = Field(
        default=10.0, gt=0, le=24 * 60, description="How old the score now may grow."
    )
    w_overdue: float = Field(default=0.25, ge=0)
    w_repeated: float = Field(default=0.15, ge=0)
    w_excursion: float = Field(default=0.20, ge=0)
    w_sensor: float = Field(default=0.10, ge=0)
    w_camera: float = Field(default=0.10, ge=0)
    w_inspection: float = Field(default=0.20, ge=0)
    overdue_cap: float = Field(default=5.0, gt=0, description="Overdue tickets scoring 1.")
    repeated_cap: float = Field(default=5.0, gt=0, description="Repeated tickets scoring 1.")
    excursion_cap_min: float = Field(default=1440.0, gt=0, description="Minutes scoring 1.")

    def weights(self) -> dict[str, float]:
        """Component name → weight."""
        return {
            "overdue": self.w_overdue,
            "repeated": self.w_repeated,
            "excursion": self.w_excursion,
            "sensor_downtime": self.w_sensor,
            "camera_downtime": self.w_camera,
            "inspection_fail": self.w_inspection,
        }


class RiskRaw(BaseModel):
    """The counts behind a score."""

    window_days: float
    tickets: int = Field(description="Tickets active in the window.")
    open_tickets: int = Field(description="Tickets not closed now.")
    overdue_tickets: int
    repeated_tickets: int
    excursion_min: float
    sensors: int
    sensor_offline_min: float
    cameras: int
    camera_offline_min: float
    items_passed: int
    items_failed: int

    @property
    def sensor_uptime(self) -> float | None:
        """Fraction of sensor-time online in the window (None without sensors)."""
        if self.sensors == 0:
            return None
        return max(0.0, 1.0 - self.sensor_offline_min / (self.sensors * self.window_days * 1440))

    @property
    def camera_uptime(self) -> float | None:
        """Fraction of camera-time online in the window (None without cameras)."""
        if self.cameras == 0:
            return None
        return max(0.0, 1.0 - self.camera_offline_min / (self.cameras * self.window_days * 1440))


class RiskScore(BaseModel):
    """A site's score, its normalised components (0..1) and the counts behind them."""

    site_id: str
    computed_at: datetime
    score: float = Field(ge=0, le=100)
    components: dict[str, float]
    raw: RiskRaw


def _clip(x: float) -> float:
    return min(1.0, max(0.0, x))


def normalise(raw: RiskRaw, settings: RiskSettings) -> dict[str, float]:
    """The six components, each 0..1."""
    up_s, up_c = raw.sensor_uptime, raw.camera_uptime
    done = raw.items_passed + raw.items_failed
    return {
        "overdue": _clip(raw.overdue_tickets / settings.overdue_cap),
        "repeated": _clip(raw.repeated_tickets / settings.repeated_cap),
        "excursion": _clip(raw.excursion_min / settings.excursion_cap_min),
        "sensor_downtime": 0.0 if up_s is None else _clip(1.0 - up_s),
        "camera_downtime": 0.0 if up_c is None else _clip(1.0 - up_c),
        "inspection_fail": 0.0 if done == 0 else raw.items_failed / done,
    }


def combine(components: dict[str, float], settings: RiskSettings) -> float:
    """Weighted mean of the components × 100, rounded to 0.01.

    Example:
        >>> s = RiskSettings()
        >>> combine({"overdue": 1.0, "repeated": 0, "excursion": 0, "sensor_downtime": 0,
        ...          "camera_downtime": 0, "inspection_fail": 0}, s)
        25.0
    """
    weights = settings.weights()
    total = sum(weights.values())
    if total <= 0:
        return 0.0
    return round(100.0 * sum(weights[k] * components[k] for k in weights) / total, 2)


_RAW_SQL = """
WITH win AS (SELECT %(now)s::timestamptz AS hi, %(now)s::timestamptz - %(window)s AS lo)
SELECT s.id AS site_id,
  (SELECT count(*) FROM tickets t WHERE t.site_id = s.id AND t.opened_at < win.hi
      AND (t.closed_at IS NULL OR t.closed_at >= win.lo)) AS tickets,
  (SELECT count(*) FROM tickets t WHERE t.site_id = s.id AND t.opened_at < win.hi
      AND (t.closed_at IS NULL OR t.closed_at > win.hi)) AS open_tickets,
  (SELECT count(*) FROM tickets t WHERE t.site_id = s.id AND t.opened_at < win.hi
      AND (t.closed_at IS NULL OR t.closed_at >= win.lo)
      AND t.due_at < least(coalesce(t.closed_at, win.hi), win.hi)) AS overdue_tickets,
  (SELECT count(*) FROM tickets t WHERE t.site_id = s.id AND t.opened_at < win.hi
      AND (t.closed_at IS NULL OR t.closed_at >= win.lo)
      AND t.occurrences > 1) AS repeated_tickets,
  (SELECT coalesce(sum(extract(epoch FROM
        least(coalesce(a.cleared_at, win.hi), win.hi) - greatest(a.started_at, win.lo))
        ) / 60, 0)
     FROM alarms a WHERE a.site_id = s.id AND a.rule IN ('temp_high', 'temp_low')
      AND a.started_at < win.hi AND coalesce(a.cleared_at, win.hi) > win.lo) AS excursion_min,
  (SELECT count(*) FROM sensors x WHERE x.site_id = s.id AND x.active) AS sensors,
  (SELECT coalesce(sum(extract(epoch FROM
        least(coalesce(a.cleared_at, win.hi), win.hi) - greatest(a.started_at, win.lo))
        ) / 60, 0)
     FROM alarms a JOIN sensors x ON x.id = a.sensor_id AND x.active
     WHERE a.site_id = s.id AND a.rule = 'sensor_offline'
      AND a.started_at < win.hi AND coalesce(a.cleared_at, win.hi) > win.lo)
      AS sensor_offline_min,
  (SELECT count(*) FROM cameras c WHERE c.site_id = s.id) AS cameras,
  (SELECT coalesce(sum(extract(epoch FROM
        least(coalesce(a.cleared_at, win.hi), win.hi) - greatest(a.started_at, win.lo))
        ) / 60, 0)
     FROM alarms a WHERE a.site_id = s.id AND a.rule = 'camera_offline'
      AND a.started_at < win.hi AND coalesce(a.cleared_at, win.hi) > win.lo)
      AS camera_offline_min,
  (SELECT count(*) FROM inspection_items ii JOIN inspections i ON i.id = ii.inspection_id
     WHERE i.site_id = s.id AND i.started_at >= win.lo AND i.started_at < win.hi
       AND ii.result = 'pass') AS items_passed,
  (SELECT count(*) FROM inspection_items ii JOIN inspections i ON i.id = ii.inspection_id
     WHERE i.site_id = s.id AND i.started_at >= win.lo AND i.started_at < win.hi
       AND ii.result = 'fail') AS items_failed
FROM sites s, win
WHERE (%(site)s::text IS NULL OR s.id = %(site)s) AND {scope}
ORDER BY s.id
"""


def compute(
    *,
    conn: Conn,
    now: datetime,
    scope: SiteScope,
    settings: RiskSettings,
    site_id: str | None = None,
) -> list[RiskScore]:
    """Compute (not store) the scores of the sites in scope, or of one site."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            _RAW_SQL.format(scope=scope.clause("s.id")),
            {
                "now": now,
                "window": timedelta(days=settings.window_days),
                "site": site_id,
                **scope.params(),
            },
        ).fetchall()
    out = []
    for r in rows:
        raw = RiskRaw.model_validate(
            {**r, "excursion_min": float(r["excursion_min"]), "window_days": settings.window_days}
            | {
                "sensor_offline_min": float(r["sensor_offline_min"]),
                "camera_offline_min": float(r["camera_offline_min"]),
            }
        )
        comps = normalise(raw, settings)
        out.append(
            RiskScore(
                site_id=r["site_id"],
                computed_at=now,
                score=combine(comps, settings),
                components=comps,
                raw=raw,
            )
        )
    return out


def store(conn: Conn, scores: list[RiskScore]) -> int:
    """Append scores to the history (idempotent per site and time)."""
    n = 0
    for s in scores:
        cur = conn.execute(
            """INSERT INTO risk_scores (site_id, computed_at, score, components)
               VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING""",
            (
                s.site_id,
                s.computed_at,
                s.score,
                Jsonb({"normalised": s.components, "raw": s.raw.model_dump()}),
            ),
        )
        n += cur.rowcount
    return n


def compute_due(conn: Conn, *, now: datetime, settings: RiskSettings) -> int:
    """Store a score for every site whose latest one is older than ``interval_h``.

    The periodic job of the workers: returns how many were stored (0 when all are fresh).
    """
    with conn.transaction():
        # Every API and worker replica runs this job (and cron may run `risk compute`):
        # one at a time, each seeing what the one before stored, or two runs a few
        # milliseconds apart would both find a site due and store two points of one day.
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('bk_risk_compute_due'))")
        due = conn.execute(
            """SELECT s.id FROM sites s
               WHERE NOT EXISTS (SELECT 1 FROM risk_scores r WHERE r.site_id = s.id
                                 AND r.computed_at > %s)
               ORDER BY s.id""",
            (now - timedelta(hours=settings.interval_h),),
        ).fetchall()
        if not due:
            return 0
        scope = SiteScope(all_sites=False, site_ids=tuple(str(r[0]) for r in due))
        n = store(conn, compute(conn=conn, now=now, scope=scope, settings=settings))
    logger.info("risk scores stored for %d site(s)", n)
    return n


_UPSERT_CURRENT = """
INSERT INTO risk_current (site_id, computed_at, score, components)
VALUES (%s, %s, %s, %s)
ON CONFLICT (site_id) DO UPDATE SET computed_at = EXCLUDED.computed_at,
    score = EXCLUDED.score, components = EXCLUDED.components
WHERE risk_current.computed_at < EXCLUDED.computed_at
"""


def store_current(conn: Conn, scores: list[RiskScore]) -> None:
    """Make ``scores`` each site's score now (an older one is replaced, a newer one kept)."""
    with conn.cursor() as cur:
        cur.executemany(
            _UPSERT_CURRENT,
            [
                (
                    s.site_id,
                    s.computed_at,
                    s.score,
                    Jsonb({"normalised": s.components, "raw": s.raw.model_dump()}),
                )
                for s in scores
            ],
        )


def refresh_current(conn: Conn, *, now: datetime, settings: RiskSettings) -> int:
    """Recompute the score now of every site whose one is older than ``refresh_min``.

    The history keeps one point a day, but the overview, the canteen page and the
    inspection draw must not show a score up to a day old: a canteen with an overdue
    ticket since this morning is riskier now. Returns how many were refreshed (0 when all
    are fresh, so the job's drain loop stops).
    """
    due = conn.execute(
        """SELECT s.id FROM sites s LEFT JOIN risk_current c ON c.site_id = s.id
           WHERE c.site_id IS NULL OR c.computed_at <= %s ORDER BY s.id""",
        (now - timedelta(minutes=settings.refresh_min),),
    ).fetchall()
    if not due:
        return 0
    scope = SiteScope(all_sites=False, site_ids=tuple(str(r[0]) for r in due))
    scores = compute(conn=conn, now=now, scope=scope, settings=settings)
    with conn.transaction():
        store_current(conn, scores)
    logger.debug("risk scores now refreshed for %d site(s)", len(scores))
    return len(scores)


def risk_step(conn: Conn, *, now: datetime, settings: RiskSettings) -> int:
    """The risk-score job's step: the day's history points that are due, then the scores
    now that are stale."""
    return compute_due(conn, now=now, settings=settings) + refresh_current(
        conn, now=now, settings=settings
    )


LATEST_SQL = """
SELECT s.id AS site_id,
       coalesce(c.score, h.score) AS score,
       coalesce(c.computed_at, h.computed_at) AS computed_at
FROM sites s
LEFT JOIN risk_current c ON c.site_id = s.id
LEFT JOIN LATERAL (SELECT r.score, r.computed_at FROM risk_scores r WHERE r.site_id = s.id
                   ORDER BY r.computed_at DESC LIMIT 1) h ON c.site_id IS NULL
WHERE {scope}
"""
"""Each site in scope with its score now (``risk_current``), or its newest stored one where
the job has not run yet (a fresh install, a database restored from a backup); NULL where
neither exists. ``{scope}`` is a clause on ``s.id``."""


class RiskPoint(BaseModel):
    """One stored score."""

    computed_at: datetime
    score: float
    components: dict[str, Any]


def history(*, conn: Conn, site_id: str, scope: SiteScope, limit: int = 365) -> list[RiskPoint]:
    """Stored scores of a site, newest first."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            f"""SELECT computed_at, score, components FROM risk_scores
                WHERE site_id = %(site)s AND {scope.clause("site_id")}
                ORDER BY computed_at DESC LIMIT %(limit)s""",
            {"site": site_id, "limit": limit, **scope.params()},
        ).fetchall()
    return [RiskPoint.model_validate(r) for r in rows]


class SiteRiskPublic(BaseModel):
    """A site's score now (computed on request) and its stored history."""

    current: RiskScore
    history: list[RiskPoint]


def site_risk(
    *, conn: Conn, site_id: str, scope: SiteScope, now: datetime, settings: RiskSettings
) -> SiteRiskPublic | None:
    """Current score and history of one site; None when absent or out of scope."""
    if not scope.allows(site_id):
        return None
    current = compute(conn=conn, now=now, scope=scope, settings=settings, site_id=site_id)
    if not current:
        return None
    return SiteRiskPublic(
        current=current[0], history=history(conn=conn, site_id=site_id, scope=scope)
    )
