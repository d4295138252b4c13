"""包保 supervision: who answers for each business, and the cadre's visits to it.

Each business (site) has a food-safety director (食品安全总监), an officer (食品安全员) and a
responsible government cadre (包保干部): ``site_people`` rows with roles ``director``,
``officer`` and ``regulator`` (the cadre, whom the escalation ladder already alerts at its
regulator step), loaded from the site file. A cadre records a visit with the checklist
answered on the spot; every item answered "no" becomes a finding (kind ``manual``, rule
``supervision_finding``) of the visited site, so the ticket engine opens its ticket and
alerts the officers exactly as for an alarm. Visit, findings and notify are one
transaction: nothing half-stored. Re-sending the same visit (site and time) adds nothing.

How often: the nearest region up the tree with a ``supervision_frequency`` row sets
``visits`` per ``period_days``; otherwise ``BK_SUPERVISION_PERIOD_DAYS`` (default 90, one
visit a quarter: see docs/supervision.md for where that default comes from).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from api.auth.scope import Principal, SiteScope
from api.input_types import IsoDateTime
from api.services.tickets import FINDINGS_CHANNEL
from bkcommon.errors import RequestError

logger = logging.getLogger(__name__)

Conn = psycopg.Connection[Any]

RULE = "supervision_finding"

CLOCK_SKEW = timedelta(minutes=10)
"""A visit may be stamped this far ahead of the server's clock (a phone's clock runs fast)."""

CADRE_ROLE = "regulator"
"""``site_people.role`` of the 包保 cadre (the escalation ladder's regulator step)."""


class SupervisionSettings(BaseSettings):
    """Defaults of 包保 supervision (environment prefix ``BK_SUPERVISION_``)."""

    model_config = SettingsConfigDict(env_prefix="BK_SUPERVISION_", extra="ignore")

    period_days: int = Field(
        default=90,
        ge=1,
        le=366,
        description="A business is due one visit per this many days unless its region says.",
    )
    visits: int = Field(default=1, ge=1, le=100, description="Visits due per period.")
    finding_tier: int = Field(
        default=2, ge=1, le=3, description="Tier of the ticket a checklist 'no' opens."
    )


CHECKLIST_SOURCE = (
    "企业落实食品安全主体责任监督管理规定（市场监管总局令第 60 号，2022）：食品安全总监和"
    "食品安全员、风险管控清单、日管控 / 周排查 / 月调度，作为包保干部督导的检查项"
)
CHECKLIST_SOURCE_EN = (
    "Provisions on enterprises' food-safety responsibility (SAMR Order No. 60, 2022): the "
    "director and the officer, the risk control list, daily control, weekly review and "
    "monthly dispatch, as what a cadre checks on a visit"
)

DEFAULT_CHECKLIST: tuple[tuple[str, str, str], ...] = (
    ("staffed", "配备食品安全总监、食品安全员并在岗", "director and officer appointed and present"),
    ("risk_list", "制定食品安全风险管控清单", "food-safety risk control list in place"),
    ("daily", "日管控记录完整 (每日检查)", "daily control records complete"),
    ("weekly", "周排查记录完整 (每周排查)", "weekly review records complete"),
    ("monthly", "月调度报告已签署 (每月调度)", "monthly dispatch report signed"),
    ("rectified", "上次督导发现问题已整改", "last visit's findings rectified"),
)
"""(key, zh, en) of the default visit checklist: what the cadre checks the business does."""


class ChecklistItemPublic(BaseModel):
    """One item of the default visit checklist."""

    key: str
    zh: str
    en: str


class ChecklistPublic(BaseModel):
    """The default visit checklist and where it comes from."""

    source: str = Field(description="Where the checklist comes from, in Chinese.")
    source_en: str = Field(description="The same in English.")
    items: list[ChecklistItemPublic]


def default_checklist() -> ChecklistPublic:
    """The default checklist a cadre's phone form starts from (items are free text on a visit)."""
    return ChecklistPublic(
        source=CHECKLIST_SOURCE,
        source_en=CHECKLIST_SOURCE_EN,
        items=[ChecklistItemPublic(key=k, zh=zh, en=en) for k, zh, en in DEFAULT_CHECKLIST],
    )


class SupervisionError(RequestError):
    """Bad supervision input that only the database can tell (422)."""

    status_code = 422


class SupervisionNotFoundError(RequestError, LookupError):
    """No such site or region in the caller's scope (404)."""

    status_code = 404


class ChecklistAnswer(BaseModel):
    """One checklist item as answered on the visit: ok, or not with a note saying what."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    item: str = Field(min_length=1, max_length=200, description="What was checked.")
    ok: bool
    note: str = Field(default="", max_length=1000)

    @model_validator(mode="after")
    def _no_needs_note(self) -> ChecklistAnswer:
        if not self.ok and not self.note:
            raise ValueError("note: required when ok is false (what was found)")
        return self


class VisitIn(BaseModel):
    """A cadre's supervision visit: where, when, the answered checklist."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    site_id: str = Field(min_length=1, max_length=100)
    visited_at: IsoDateTime
    checklist: list[ChecklistAnswer] = Field(min_length=1, max_length=100)
    note: str = Field(default="", max_length=2000)

    @model_validator(mode="after")
    def _items_unique(self) -> VisitIn:
        items = [a.item for a in self.checklist]
        if len(set(items)) != len(items):
            raise ValueError("checklist: each item may be answered once")
        return self


class VisitPublic(BaseModel):
    """A stored visit with the tickets its findings opened (once the engine has run)."""

    id: int
    site_id: str
    person_id: str | None
    visited_by: str
    visited_at: datetime
    checklist: list[ChecklistAnswer]
    note: str
    findings: int
    ticket_ids: list[int]
    ticket_nos: list[str] = Field(
        default_factory=list, description="Those tickets' numbers (ZG-…), in the same order."
    )
    created_at: datetime


class FrequencyIn(BaseModel):
    """How often a region wants each of its businesses visited."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    region_id: str = Field(min_length=1, max_length=100)
    period_days: int = Field(ge=1, le=366)
    visits: int = Field(default=1, ge=1, le=100)
    source: str = Field(
        default="", max_length=300, description="The rule that sets it, e.g. a notice's number."
    )


class FrequencyPublic(BaseModel):
    """A region's stored frequency."""

    region_id: str
    period_days: int
    visits: int
    source: str
    updated_by: str
    updated_at: datetime


_SELECT = """SELECT v.id, v.site_id, v.person_id, v.visited_by, v.visited_at, v.checklist,
       v.note, v.findings, v.created_at,
       coalesce((SELECT array_agg(f.ticket_id ORDER BY f.ticket_id) FROM findings f
                 WHERE f.finding_key LIKE 'supervision:' || v.id || ':%%'
                   AND f.ticket_id IS NOT NULL), '{}') AS ticket_ids,
       coalesce((SELECT array_agg(t.ticket_no ORDER BY f.ticket_id) FROM findings f
                 JOIN tickets t ON t.id = f.ticket_id
                 WHERE f.finding_key LIKE 'supervision:' || v.id || ':%%'), '{}') AS ticket_nos
FROM supervision_visits v"""


def record_visit(
    conn: Conn,
    *,
    data: VisitIn,
    scope: SiteScope,
    user: Principal,
    settings: SupervisionSettings,
    now: datetime,
) -> tuple[int, bool]:
    """Store a visit and one finding per "no" answer, atomically.

    Returns (visit id, created); ``created`` is False when this site's visit at the same
    time was recorded before (nothing changes). A site outside the scope is not found; a
    visit stamped in the future (beyond ``CLOCK_SKEW``) is refused naming ``visited_at``.
    """
    if not scope.allows(data.site_id):
        raise SupervisionNotFoundError(f"site_id: site {data.site_id} not found")
    if data.visited_at > now + CLOCK_SKEW:
        raise SupervisionError(f"visited_at: {data.visited_at.isoformat()} is in the future")
    with conn.transaction():
        if conn.execute("SELECT 1 FROM sites WHERE id = %s", (data.site_id,)).fetchone() is None:
            raise SupervisionNotFoundError(f"site_id: site {data.site_id} not found")
        failed = [a for a in data.checklist if not a.ok]
        row = conn.execute(
            """INSERT INTO supervision_visits (site_id, person_id, visited_by, visited_at,
                   checklist, note, findings)
               VALUES (%s, %s, %s, %s, %s, %s, %s)
               ON CONFLICT (site_id, visited_at) DO NOTHING RETURNING id""",
            (
                data.site_id,
                _person(conn, user.person_id),
                user.username,
                data.visited_at,
                Jsonb([a.model_dump() for a in data.checklist]),
                data.note,
                len(failed),
            ),
        ).fetchone()
        if row is None:
            existing = conn.execute(
                "SELECT id FROM supervision_visits WHERE site_id = %s AND visited_at = %s",
                (data.site_id, data.visited_at),
            ).fetchone()
            assert existing is not None
            return int(existing[0]), False
        visit_id = int(row[0])
        for n, answer in enumerate(data.checklist):
            if not answer.ok:
                _finding(conn, visit_id, n, answer, data, user.username, settings)
        if failed:
            conn.execute("SELECT pg_notify(%s, %s)", (FINDINGS_CHANNEL, f"supervision:{visit_id}"))
    logger.info(
        "supervision visit %s to %s by %s: %d of %d items not met",
        visit_id,
        data.site_id,
        user.username,
        len(failed),
        len(data.checklist),
        extra={"site_id": data.site_id},
    )
    return visit_id, True


def _person(conn: Conn, person_id: str | None) -> str | None:
    """The user's person id when it names a stored person (a cadre signed in as themselves)."""
    if person_id is None:
        return None
    row = conn.execute("SELECT 1 FROM people WHERE id = %s", (person_id,)).fetchone()
    return person_id if row is not None else None


def _finding(  # noqa: PLR0917 - one finding's whole context
    conn: Conn,
    visit_id: int,
    index: int,
    answer: ChecklistAnswer,
    data: VisitIn,
    actor: str,
    settings: SupervisionSettings,
) -> None:
    """The finding of one "no": the ticket engine turns it into the site's ticket."""
    conn.execute(
        """INSERT INTO findings (finding_key, kind, site_id, subject, rule, tier, occurred_at,
                                 payload)
           VALUES (%s, 'manual', %s, %s, %s, %s, %s, %s)
           ON CONFLICT (finding_key) DO NOTHING""",
        (
            f"supervision:{visit_id}:{index}",
            data.site_id,
            answer.item,
            RULE,
            settings.finding_tier,
            data.visited_at,
            Jsonb(
                {
                    "visit_id": visit_id,
                    "item": answer.item,
                    "note": answer.note,
                    "visited_by": actor,
                }
            ),
        ),
    )


def list_visits(
    conn: Conn,
    *,
    scope: SiteScope,
    site_id: str | None,
    limit: int,
    offset: int,
) -> list[VisitPublic]:
    """Visits to sites in scope, newest first."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            f"""{_SELECT}
                WHERE {scope.clause("v.site_id")}
                  AND (%(site)s::text IS NULL OR v.site_id = %(site)s)
                ORDER BY v.visited_at DESC, v.id DESC LIMIT %(limit)s OFFSET %(offset)s""",
            {"site": site_id, "limit": limit, "offset": offset, **scope.params()},
        ).fetchall()
    return [VisitPublic.model_validate(r) for r in rows]


def get_visit(conn: Conn, *, visit_id: int, scope: SiteScope) -> VisitPublic | None:
    """One visit in scope, or None."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            f"{_SELECT} WHERE v.id = %(id)s AND {scope.clause('v.site_id')}",
            {"id": visit_id, **scope.params()},
        ).fetchone()
    return None if row is None else VisitPublic.model_validate(row)


def set_frequency(
    conn: Conn, *, data: FrequencyIn, user: Principal, scope_regions: frozenset[str] | None
) -> FrequencyPublic:
    """Store a region's frequency; ``scope_regions`` None means any region (admin)."""
    if scope_regions is not None and data.region_id not in scope_regions:
        raise SupervisionNotFoundError(f"region_id: region {data.region_id} not found")
    with conn.cursor(row_factory=dict_row) as cur:
        if cur.execute("SELECT 1 FROM regions WHERE id = %s", (data.region_id,)).fetchone() is None:
            raise SupervisionNotFoundError(f"region_id: region {data.region_id} not found")
        row = cur.execute(
            """INSERT INTO supervision_frequency (region_id, period_days, visits, source,
                   updated_by, updated_at)
               VALUES (%s, %s, %s, %s, %s, now())
               ON CONFLICT (region_id) DO UPDATE SET period_days = EXCLUDED.period_days,
                   visits = EXCLUDED.visits, source = EXCLUDED.source,
                   updated_by = EXCLUDED.updated_by, updated_at = now()
               RETURNING region_id, period_days, visits, source, updated_by, updated_at""",
            (data.region_id, data.period_days, data.visits, data.source, user.username),
        ).fetchone()
    assert row is not None
    logger.info(
        "supervision frequency of %s set to %d per %d days by %s",
        data.region_id,
        data.visits,
        data.period_days,
        user.username,
    )
    return FrequencyPublic.model_validate(row)
