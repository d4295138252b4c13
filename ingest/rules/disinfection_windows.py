"""Judge each meal's disinfection window once it closes: done, missed or failed.

After a meal service ends, each of the site's cabinets must complete a valid cycle
within the site's window (default 60 min). The judgement is driven by time passing,
from the worker's periodic sweep (as the offline rule is), so a cabinet that sends
nothing at all is still found ``disinfection_missed``. A window counts a cycle that
started at or after the meal's start and ended by the window's end:

- a valid cycle (or one still running that has already held long enough): ``done``;
- otherwise a cycle that started in that span but was too cool, too short or had not
  finished: ``disinfection_failed``;
- otherwise: ``disinfection_missed``.

Each judgement is one ``disinfection_checks`` row (primary key cabinet, date, meal), so
several workers sweeping at once, or a sweep repeated after a crash, judge a window
once. A missed or failed window writes an ``alarm_raised`` finding (rule
``disinfection_missed`` / ``disinfection_failed``) with the cabinet's temperature curve
over the window as evidence; the ticket engine opens the 餐具消毒不到位 ticket and alerts
the officer from it. A later ``done`` window proposes closing an open ticket of that
cabinet (``alarm_cleared``), as a cleared alarm does.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg.types.json import Jsonb

from bkcommon.disinfection import meals_served
from ingest.rules.disinfection import STATE_RULE, CycleState

logger = logging.getLogger(__name__)

RULE_MISSED = "disinfection_missed"
RULE_FAILED = "disinfection_failed"
TIER = 2
"""限期整改: a rectification with a deadline (the region's grading, DOMAIN.md)."""
LOOKBACK = timedelta(days=2)
"""Windows that closed longer ago than this are not judged late (a worker down for days)."""
CURVE_MAX_POINTS = 240
MAX_PER_SWEEP = 200
"""Windows judged per sweep at most (oldest first): a district whose lunches all end at
12:30 is judged over a few sweeps instead of stalling the worker's loop for seconds
(about 5 ms per window, docs/disinfection.md)."""
JUDGE_GRACE = timedelta(minutes=5)
"""A window is judged this long after it closes, so readings still in flight (a gateway's
batch, a worker's flush) are counted; the finding is still dated at the window's end. It is
not shorter than the plug's ``PLUG_PAUSE``: a thermostat's pause that began before the
window closed has been decided (resumed, or ended) by the time the window is judged, and one
that began after it cannot make the window's cycle valid in time."""


@dataclass(frozen=True, slots=True)
class Window:
    """One cabinet's disinfection window after one meal service."""

    sensor_id: str
    site_id: str
    service_date: date
    meal: str
    meal_start: datetime
    meal_end: datetime
    window_end: datetime
    cabinet_type: str
    min_temp_c: float
    min_hold_s: int


def windows_closed(
    *,
    sensor_id: str,
    site_id: str,
    tz: str,
    window_s: int,
    services: list[dict[str, Any]],
    days_off: list[dict[str, Any]],
    since: datetime,
    now: datetime,
    created_at: datetime | None = None,
    cabinet_type: str,
    min_temp_c: float,
    min_hold_s: int,
) -> list[Window]:
    """Windows that closed at or after ``since`` and by ``now`` less :data:`JUDGE_GRACE`,
    of meals that started once the cabinet was registered (``created_at``). The look-back
    is on the window's close, as documented: on the meal's start, a dinner whose window
    closed 36 h ago was out of reach after a long worker outage."""
    zone = ZoneInfo(tz)
    first = (since - timedelta(seconds=window_s) - timedelta(days=1)).astimezone(zone).date()
    last = now.astimezone(zone).date()
    out: list[Window] = []
    for m in meals_served(tz, services, days_off, first, last):
        closes = m.end + timedelta(seconds=window_s)
        registered = created_at is None or m.start >= created_at
        if registered and closes >= since and closes + JUDGE_GRACE <= now:
            out.append(
                Window(
                    sensor_id,
                    site_id,
                    m.day,
                    m.meal,
                    m.start,
                    m.end,
                    closes,
                    cabinet_type,
                    min_temp_c,
                    min_hold_s,
                )
            )
    return out


_CANDIDATES = """
SELECT c.sensor_id, c.site_id, m.timezone, m.window_s, m.services, m.days_off,
       c.created_at, c.cabinet_type, c.min_temp_c, c.min_hold_s
FROM disinfection_cabinets AS c
JOIN meal_schedules AS m ON m.site_id = c.site_id
JOIN sensors AS s ON s.id = c.sensor_id AND s.active
ORDER BY c.sensor_id
"""


def due_windows(conn: psycopg.Connection[Any], now: datetime) -> list[Window]:
    """Closed windows not judged yet, for every active cabinet of a site with a meal schedule."""
    out: list[Window] = []
    for row in conn.execute(_CANDIDATES).fetchall():
        sid, site, tz, window_s, services, days_off, created, ctype, tmin, hold = row
        out += windows_closed(
            sensor_id=str(sid),
            site_id=str(site),
            tz=str(tz),
            window_s=int(window_s),
            services=list(services),
            days_off=list(days_off),
            since=now - LOOKBACK,
            now=now,
            created_at=created,
            cabinet_type=str(ctype),
            min_temp_c=float(tmin),
            min_hold_s=int(hold),
        )
    if not out:
        return []
    judged = {
        (str(r[0]), r[1], str(r[2]))
        for r in conn.execute(
            "SELECT sensor_id, service_date, meal FROM disinfection_checks "
            "WHERE sensor_id = ANY(%s) AND service_date >= %s",
            (sorted({w.sensor_id for w in out}), min(w.service_date for w in out)),
        ).fetchall()
    }
    due = [w for w in out if (w.sensor_id, w.service_date, w.meal) not in judged]
    due.sort(key=lambda w: (w.window_end, w.sensor_id))
    return due


_VALID_CYCLE = """
SELECT id, started_at, ended_at, peak_c, held_s, verdict, judged_by, on_s, peak_w
FROM disinfection_cycles
WHERE sensor_id = %(s)s AND started_at >= %(a)s AND started_at <= %(b)s
  AND verdict = 'valid' AND coalesce(valid_at, ended_at) <= %(b)s
ORDER BY started_at LIMIT 1
"""

"""A cycle without ``valid_at`` (written by an ingest worker older than migration 0037,
during a rolling upgrade) counts as valid at its end, the rule it was written under."""

_ANY_CYCLE = """
SELECT id, started_at, ended_at, peak_c, held_s, verdict, judged_by, on_s, peak_w
FROM disinfection_cycles
WHERE sensor_id = %(s)s AND started_at >= %(a)s AND started_at <= %(b)s
ORDER BY started_at DESC LIMIT 1
"""


def _cycle_in(conn: psycopg.Connection[Any], w: Window, valid: bool) -> dict[str, Any] | None:
    """The first valid cycle of the window, or (``valid`` False) the last one begun in it."""
    sql = _VALID_CYCLE if valid else _ANY_CYCLE
    row = conn.execute(sql, {"s": w.sensor_id, "a": w.meal_start, "b": w.window_end}).fetchone()
    if row is None:
        return None
    return {
        "cycle_id": int(row[0]),
        "started_at": row[1].isoformat(),
        "ended_at": row[2].isoformat(),
        "peak_c": None if row[3] is None else float(row[3]),
        "held_s": float(row[4]),
        "verdict": str(row[5]),
        "judged_by": str(row[6]),
        "on_s": None if row[7] is None else float(row[7]),
        "peak_w": None if row[8] is None else float(row[8]),
    }


def _running(conn: psycopg.Connection[Any], w: Window) -> CycleState | None:
    """The cabinet's cycle in progress, if it started inside the window's span."""
    row = conn.execute(
        "SELECT state FROM rule_state WHERE rule = %s AND sensor_id = %s",
        (STATE_RULE, w.sensor_id),
    ).fetchone()
    if row is None:
        return None
    try:
        state = CycleState.from_json(row[0])
    except (ValueError, TypeError, KeyError):
        return None
    if not state.running or state.started_at is None:
        return None
    if not (w.meal_start <= state.started_at <= w.window_end):
        return None
    return state


def curve(
    conn: psycopg.Connection[Any], sensor_id: str, start: datetime, end: datetime
) -> list[list[Any]]:
    """The temperature curve [[ISO time, °C], ...] between ``start`` and ``end``, thinned to
    at most :data:`CURVE_MAX_POINTS` points (the ticket's evidence)."""
    rows = conn.execute(
        "SELECT ts, temp_c FROM sensor_readings WHERE sensor_id = %s AND ts >= %s AND ts <= %s "
        "ORDER BY ts",
        (sensor_id, start, end),
    ).fetchall()
    stride = max(1, -(-len(rows) // CURVE_MAX_POINTS))
    return [[r[0].astimezone(UTC).isoformat(), float(r[1])] for r in rows[::stride]]


def power_curve(
    conn: psycopg.Connection[Any], sensor_id: str, start: datetime, end: datetime
) -> list[list[Any]]:
    """The cabinet plug's curve [[ISO time, W or null, A or null], ...] between ``start``
    and ``end``, thinned to at most :data:`CURVE_MAX_POINTS` points; [] without a plug.
    The sample before ``start`` leads it, so a cabinet already on at the start shows so."""
    rows = conn.execute(
        """(SELECT ts, power_w, current_a FROM cabinet_power
            WHERE sensor_id = %(s)s AND ts < %(a)s ORDER BY ts DESC LIMIT 1)
           UNION ALL
           (SELECT ts, power_w, current_a FROM cabinet_power
            WHERE sensor_id = %(s)s AND ts >= %(a)s AND ts <= %(b)s ORDER BY ts)""",
        {"s": sensor_id, "a": start, "b": end},
    ).fetchall()
    stride = max(1, -(-len(rows) // CURVE_MAX_POINTS))
    return [
        [
            max(r[0], start).astimezone(UTC).isoformat(),
            None if r[1] is None else float(r[1]),
            None if r[2] is None else float(r[2]),
        ]
        for r in rows[::stride]
    ]


def judge(conn: psycopg.Connection[Any], w: Window) -> tuple[str, dict[str, Any] | None, str]:
    """Outcome (done / missed / failed), the cycle that decided it, and a reason."""
    valid = _cycle_in(conn, w, valid=True)
    if valid is not None:
        return "done", valid, "valid cycle"
    running = _running(conn, w)
    if running is not None and running.valid_at is not None and running.valid_at <= w.window_end:
        return "done", None, "valid cycle still running at the window's end"
    other = _cycle_in(conn, w, valid=False)
    if other is not None:
        late = other["verdict"] == "valid"
        return (
            "failed",
            other,
            "held long enough only after the window" if late else other["verdict"],
        )
    if running is not None:
        return "failed", None, "cycle unfinished at the window's end"
    plug = conn.execute(
        "SELECT has_plug FROM disinfection_cabinets WHERE sensor_id = %s", (w.sensor_id,)
    ).fetchone()
    if plug is not None and plug[0]:
        return "missed", None, "no cycle: never switched on (the plug drew no power)"
    return "missed", None, "no cycle"


_INSERT_CHECK = """
INSERT INTO disinfection_checks (sensor_id, site_id, service_date, meal, meal_start, meal_end,
                                 window_end, outcome, cycle_id, checked_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT DO NOTHING
"""

_FINDING = """
INSERT INTO findings (finding_key, kind, site_id, subject, rule, tier, occurred_at, payload)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (finding_key) DO NOTHING
"""


def _record(conn: psycopg.Connection[Any], w: Window, now: datetime) -> int:
    """Judge and record one window in its own transaction; return the findings written."""
    with conn.transaction():
        outcome, cycle, reason = judge(conn, w)
        cur = conn.execute(
            _INSERT_CHECK,
            (
                w.sensor_id,
                w.site_id,
                w.service_date,
                w.meal,
                w.meal_start,
                w.meal_end,
                w.window_end,
                outcome,
                None if cycle is None else cycle["cycle_id"],
                now,
            ),
        )
        if cur.rowcount <= 0:
            return 0  # another worker judged it
        key = f"disinfection:{w.sensor_id}:{w.service_date.isoformat()}:{w.meal}"
        if outcome == "done":
            return _propose_close(conn, w, key, cycle)
        rule = RULE_MISSED if outcome == "missed" else RULE_FAILED
        start = w.meal_end
        if cycle is not None:
            start = min(start, datetime.fromisoformat(cycle["started_at"]))
        payload = {
            "sensor_id": w.sensor_id,
            "rule": rule,
            "meal": w.meal,
            "service_date": w.service_date.isoformat(),
            "meal_start": w.meal_start.isoformat(),
            "meal_end": w.meal_end.isoformat(),
            "window_end": w.window_end.isoformat(),
            "cabinet_type": w.cabinet_type,
            "min_temp_c": w.min_temp_c,
            "min_hold_s": w.min_hold_s,
            "reason": reason,
            "cycle": cycle,
            "curve": curve(conn, w.sensor_id, start, w.window_end),
            "power_curve": power_curve(conn, w.sensor_id, start, w.window_end),
        }
        cur = conn.execute(
            _FINDING,
            (
                key + ":" + outcome,
                "alarm_raised",
                w.site_id,
                w.sensor_id,
                rule,
                TIER,
                w.window_end,
                Jsonb(payload),
            ),
        )
        n = max(cur.rowcount, 0)
    logger.warning(
        "%s on %s after %s %s (%s)",
        rule,
        w.sensor_id,
        w.service_date,
        w.meal,
        reason,
        extra={"site_id": w.site_id},
    )
    return n


def _propose_close(
    conn: psycopg.Connection[Any], w: Window, key: str, cycle: dict[str, Any] | None
) -> int:
    """A done window proposes closing the cabinet's open disinfection tickets (if any)."""
    rows = conn.execute(
        "SELECT rule FROM tickets WHERE subject = %s AND site_id = %s AND rule = ANY(%s) "
        "AND status <> 'closed'",
        (w.sensor_id, w.site_id, [RULE_MISSED, RULE_FAILED]),
    ).fetchall()
    n = 0
    for (rule,) in rows:
        cur = conn.execute(
            _FINDING,
            (
                f"{key}:done:{rule}",
                "alarm_cleared",
                w.site_id,
                w.sensor_id,
                str(rule),
                TIER,
                w.window_end,
                Jsonb(
                    {
                        "sensor_id": w.sensor_id,
                        "rule": str(rule),
                        "meal": w.meal,
                        "service_date": w.service_date.isoformat(),
                        "cycle": cycle,
                    }
                ),
            ),
        )
        n += max(cur.rowcount, 0)
    return n


def sweep_disinfection(conn: psycopg.Connection[Any], now: datetime) -> int:
    """Judge every closed, unjudged window; NOTIFY ``bk_findings`` if any finding was written.

    ``conn`` must not be inside a transaction. Returns the findings rows written.
    """
    written = 0
    with conn.transaction():
        for w in due_windows(conn, now)[:MAX_PER_SWEEP]:
            written += _record(conn, w, now)
        if written:
            conn.execute("NOTIFY bk_findings")
    return written
