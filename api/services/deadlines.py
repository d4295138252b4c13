"""Rectification deadlines: tier defaults from settings, overridden per rule and region.

Overrides live in the ``deadline_rules`` table (migration 0009). The most specific row wins:
region + rule, then rule alone, then region + tier, then the tier default of ``ApiSettings``.
A site's region counts with its ancestors, the nearest first, so a district can tighten what
its city set. An override gives hours or working days (migration 0034: "10 working days", the
licence-check practice), counted on the region's calendar by ``api.services.workdays``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg

from api.services.workdays import working_days_after
from api.settings import ApiSettings

Conn = psycopg.Connection[Any]


@dataclass(frozen=True, slots=True)
class WorkingDays:
    """A deadline of ``n`` working days (工作日), weekends and public holidays not counted."""

    n: int


Deadline = timedelta | WorkingDays
"""Time allowed to rectify: a length of time, or a number of working days."""


def resolve_deadline(
    conn: Conn, *, site_id: str, rule: str, tier: int, settings: ApiSettings
) -> Deadline:
    """Time allowed to rectify a ticket of ``rule`` / ``tier`` at ``site_id``."""
    row = conn.execute(
        """WITH RECURSIVE up(id, depth) AS (
               SELECT region_id, 0 FROM sites WHERE id = %(site)s
               UNION ALL
               SELECT r.parent_id, up.depth + 1 FROM regions r JOIN up ON r.id = up.id
               WHERE r.parent_id IS NOT NULL AND up.depth < 32
           )
           SELECT d.hours, d.working_days FROM deadline_rules d
           LEFT JOIN up ON up.id = d.region_id
           WHERE (d.region_id IS NULL OR up.id IS NOT NULL)
             AND (d.rule = %(rule)s OR (d.rule IS NULL AND d.tier = %(tier)s))
           ORDER BY (d.rule IS NULL), (d.region_id IS NULL), up.depth NULLS LAST
           LIMIT 1""",
        {"site": site_id, "rule": rule, "tier": tier},
    ).fetchone()
    if row is not None:
        return WorkingDays(int(row[1])) if row[1] is not None else timedelta(hours=float(row[0]))
    return settings.deadline(tier)


def due_after(conn: Conn, start: datetime, deadline: Deadline) -> datetime:
    """When a ticket opened (or reopened) at ``start`` with ``deadline`` falls due."""
    if isinstance(deadline, WorkingDays):
        return working_days_after(conn, start, deadline.n)
    return start + deadline


def set_deadline_rule(
    conn: Conn,
    *,
    hours: float | None = None,
    working_days: int | None = None,
    region_id: str | None = None,
    rule: str | None = None,
    tier: int | None = None,
) -> None:
    """Create or replace one override (``rule`` or ``tier``; ``hours`` or ``working_days``)."""
    if rule is None and tier is None:
        raise ValueError("a deadline rule needs a rule or a tier")
    if (hours is None) == (working_days is None):
        raise ValueError("a deadline rule needs hours or working days, one of them")
    conn.execute(
        """INSERT INTO deadline_rules (region_id, rule, tier, hours, working_days)
           VALUES (%s, %s, %s, %s, %s)
           ON CONFLICT (coalesce(region_id, ''), coalesce(rule, ''), coalesce(tier, 0))
           DO UPDATE SET hours = excluded.hours, working_days = excluded.working_days""",
        (region_id, rule, tier, hours, working_days),
    )
