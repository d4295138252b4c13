"""A daily check not done by its deadline becomes a ticket that climbs the escalation ladder.

For each site that keeps the daily duties, each day since ``since`` (at most
``lookback_days`` back, so a worker that was down catches up without flooding) whose
deadline (the region's local time) has passed without a completed check gets one finding (rule
``daily_check_missed``, key ``daily_check_missed:<site>:<day>``). The ticket engine opens
its ticket and alerts the officer; the existing escalation ladder then warns the officer
and the director at the ticket's deadline and the regulator responsible for the site
(the 包保 cadre) after it. The finding key makes the check idempotent: any number of
workers and restarts produce one ticket per site and day.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

import psycopg
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from api.services.duties import china_today
from api.services.tickets import FINDINGS_CHANNEL
from bkcommon.localtime import region_zone_name

logger = logging.getLogger(__name__)

Conn = psycopg.Connection[Any]

RULE_MISSED = "daily_check_missed"

LOG_EACH_MAX = 20
"""Misses of one sweep logged one by one; the rest in one line (a district's first sweep, or
one after a long outage, finds thousands: the findings and tickets carry them all)."""

DUTY_CHANNEL = "bk_duties"
"""NOTIFY this to make the deadline check look now (it also polls)."""


class DutySettings(BaseSettings):
    """Defaults of the duty deadline check (environment prefix ``BK_DUTY_``)."""

    model_config = SettingsConfigDict(env_prefix="BK_DUTY_", extra="ignore")

    missed_tier: int = Field(
        default=2, ge=1, le=3, description="Tier of the ticket a missed daily check opens."
    )
    lookback_days: int = Field(
        default=2, ge=0, le=31, description="Days before today still checked for a miss."
    )
    interval_s: float = Field(
        default=300.0, gt=0, le=3600, description="How often the worker looks for misses."
    )
    sample_missed_tier: int = Field(
        default=2, ge=1, le=3, description="Tier of the ticket a meal without food samples opens."
    )
    sample_grace_min: int = Field(
        default=60,
        ge=0,
        le=24 * 60,
        description="Minutes after a meal's end by which its food samples must be on record.",
    )

    @property
    def sample_grace(self) -> timedelta:
        """How long after a meal's end its food samples must be on record."""
        return timedelta(minutes=self.sample_grace_min)


def check_deadlines(conn: Conn, *, now: datetime, settings: DutySettings) -> int:
    """Record a finding for every daily check missed by ``now``; return how many are new."""
    today = china_today(now)
    first = today - timedelta(days=settings.lookback_days)
    with conn.transaction():
        rows = conn.execute(
            """WITH days AS (
                   SELECT d.site_id, g::date AS day,
                          (g::date + d.deadline_local) AT TIME ZONE %(tz)s AS due
                   FROM duty_sites d,
                        generate_series(greatest(d.since, %(first)s), %(today)s,
                                        interval '1 day') g)
               INSERT INTO findings (finding_key, kind, site_id, subject, rule, tier,
                                     occurred_at, payload)
               SELECT 'daily_check_missed:' || days.site_id || ':' || days.day,
                      'manual', days.site_id, 'daily_check', %(rule)s, %(tier)s, days.due,
                      jsonb_build_object('check_date', days.day, 'due_at', days.due)
               FROM days
               WHERE days.due <= %(now)s
                 AND NOT EXISTS (SELECT 1 FROM daily_checks c
                                 WHERE c.site_id = days.site_id AND c.check_date = days.day)
               ON CONFLICT (finding_key) DO NOTHING
               RETURNING site_id, occurred_at""",
            {
                "first": first,
                "today": today,
                "tz": region_zone_name(),
                "now": now,
                "rule": RULE_MISSED,
                "tier": settings.missed_tier,
            },
        ).fetchall()
        if rows:
            conn.execute("SELECT pg_notify(%s, %s)", (FINDINGS_CHANNEL, RULE_MISSED))
    for site_id, due in rows[:LOG_EACH_MAX]:
        logger.warning(
            "daily check of %s missed (due %s)",
            site_id,
            due.isoformat(),
            extra={"site_id": site_id},
        )
    if len(rows) > LOG_EACH_MAX:
        logger.warning("%d more daily checks missed (findings recorded)", len(rows) - LOG_EACH_MAX)
    return len(rows)
