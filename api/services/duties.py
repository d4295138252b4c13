"""The officer's daily control (日管控): which sites keep it, duty photos, the daily check.

A site keeps the daily duties once it has a ``duty_sites`` row (business type, the local
time its daily check is due, since when). The officer answers the site's checklist once a
day on a phone; every "no" must carry a photo uploaded first through the evidence checks
(``POST /sites/{id}/duty-photos``), and becomes a finding (kind ``manual``, rule
``daily_check_no``, subject the item) in the same transaction, so the ticket engine opens
the ticket and alerts the officers exactly as for an alarm. A repeated "no" on the same
item while its ticket is open is one more occurrence of that ticket, not a second one.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime, time
from typing import Any, Literal

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.auth.scope import SiteScope
from api.input_types import IsoDate
from api.services.duty_templates import Checklist, checklist_for
from api.services.evidence import EvidenceStore, check_image
from api.services.tickets import FINDINGS_CHANNEL
from bkcommon.errors import RequestError
from bkcommon.localtime import local_date

Conn = psycopg.Connection[Any]

RULE_NO = "daily_check_no"

BusinessType = Literal["school_canteen", "restaurant", "group_meal"]


class DutyError(RequestError):
    """Duty input that only the database can judge (422); the message names the field."""

    status_code = 422


class DutyNotFoundError(RequestError, LookupError):
    """No such site (or record) in the caller's scope (404)."""

    status_code = 404


class DutyConflictError(RequestError):
    """Recorded already and final (409)."""

    status_code = 409


def china_today(now: datetime) -> date:
    """The region's calendar day at ``now`` (``BK_TIME_ZONE``): duties are per local day."""
    return local_date(now)


def require_site(conn: Conn, scope: SiteScope, site_id: str) -> None:
    """404 unless ``site_id`` exists and is in scope (an officer writes only their site)."""
    if not scope.allows(site_id) or (
        conn.execute("SELECT 1 FROM sites WHERE id = %s", (site_id,)).fetchone() is None
    ):
        raise DutyNotFoundError(f"site_id: site {site_id} not found")


class DutySiteIn(BaseModel):
    """How a site keeps its daily duties."""

    model_config = ConfigDict(extra="forbid")

    business_type: BusinessType
    deadline_local: str = Field(
        default="10:00",
        pattern=r"^([01]\d|2[0-3]):[0-5]\d$",
        description="Local time (HH:MM, BK_TIME_ZONE) by which the daily check is due.",
    )
    since: IsoDate | None = Field(default=None, description="First day checked; default today.")


class DutySitePublic(BaseModel):
    """A site's duty settings and its checklist."""

    site_id: str
    business_type: str
    deadline_local: str = Field(
        description="Local time (HH:MM, BK_TIME_ZONE) the daily check is due by."
    )
    since: date
    checklist: Checklist


def set_duty_site(
    conn: Conn, *, site_id: str, data: DutySiteIn, scope: SiteScope, actor: str, now: datetime
) -> None:
    """Create or change the site's duty settings."""
    require_site(conn, scope, site_id)
    conn.execute(
        """INSERT INTO duty_sites (site_id, business_type, deadline_local, since, updated_by,
                                   updated_at)
           VALUES (%s, %s, %s, %s, %s, %s)
           ON CONFLICT (site_id) DO UPDATE SET business_type = EXCLUDED.business_type,
               deadline_local = EXCLUDED.deadline_local, since = EXCLUDED.since,
               updated_by = EXCLUDED.updated_by, updated_at = EXCLUDED.updated_at""",
        (
            site_id,
            data.business_type,
            time.fromisoformat(data.deadline_local),
            data.since or china_today(now),
            actor,
            now,
        ),
    )


def get_duty_site(conn: Conn, *, site_id: str, scope: SiteScope) -> DutySitePublic | None:
    """The site's duty settings with its effective checklist, or None when it keeps none."""
    require_site(conn, scope, site_id)
    row = conn.execute(
        "SELECT business_type, deadline_local, since FROM duty_sites WHERE site_id = %s",
        (site_id,),
    ).fetchone()
    if row is None:
        return None
    return DutySitePublic(
        site_id=site_id,
        business_type=row[0],
        deadline_local=row[1].strftime("%H:%M"),
        since=row[2],
        checklist=checklist_for(conn, site_id=site_id, business_type=row[0]),
    )


def store_photo(
    conn: Conn,
    *,
    store: EvidenceStore,
    site_id: str,
    content: bytes,
    scope: SiteScope,
    actor: str,
    now: datetime,
) -> str:
    """Check a photo (type, size, decompression bombs), store it by hash for the site."""
    require_site(conn, scope, site_id)
    info = check_image(content)
    sha = hashlib.sha256(content).hexdigest()
    store.put(sha, content)
    conn.execute(
        """INSERT INTO duty_photos (site_id, sha256, media_type, uploaded_by, uploaded_at)
           VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING""",
        (site_id, sha, info.media_type, actor, now),
    )
    return sha


def photo_media_type(conn: Conn, *, site_id: str, sha256: str, scope: SiteScope) -> str | None:
    """The media type of a duty photo of the site in scope, or None."""
    require_site(conn, scope, site_id)
    row = conn.execute(
        "SELECT media_type FROM duty_photos WHERE site_id = %s AND sha256 = %s",
        (site_id, sha256),
    ).fetchone()
    return None if row is None else str(row[0])


class AnswerIn(BaseModel):
    """One answer of the daily check."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    item: str = Field(min_length=1, max_length=40)
    ok: bool
    note: str = Field(default="", max_length=500)
    photo_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")

    @model_validator(mode="after")
    def _photo_for_no(self) -> AnswerIn:
        if not self.ok and self.photo_sha256 is None:
            raise ValueError(f"photo_sha256: a 'no' to {self.item!r} needs a photo")
        return self


class DailyCheckIn(BaseModel):
    """The officer's answers to every item of the site's checklist for one day."""

    model_config = ConfigDict(extra="forbid")

    check_date: IsoDate | None = Field(default=None, description="China date; default today.")
    answers: list[AnswerIn] = Field(min_length=1, max_length=100)


class AnswerPublic(BaseModel):
    """A stored answer."""

    item: str
    label: str
    ok: bool
    note: str
    photo_sha256: str | None


class DailyCheckPublic(BaseModel):
    """A completed daily check with the tickets its "no" answers opened (once processed)."""

    id: int
    site_id: str
    check_date: date
    business_type: str
    template_source: str
    completed_by: str
    completed_by_name: str = Field(
        default="", description="Who, as people know them: the person behind the account."
    )
    completed_at: datetime
    answers: list[AnswerPublic]
    findings: int = Field(description="How many 'no' answers became findings (tickets).")


def record_daily_check(
    conn: Conn,
    *,
    site_id: str,
    data: DailyCheckIn,
    scope: SiteScope,
    actor: str,
    now: datetime,
) -> int:
    """Store the day's check and a finding per "no", all or nothing; return its id.

    Refused (422, naming the field) when the site keeps no duties, an item is unknown,
    missing or repeated, a photo was not uploaded for this site, or the day is in the
    future; 409 when the day's check is recorded already.
    """
    require_site(conn, scope, site_id)
    day = data.check_date or china_today(now)
    if day > china_today(now):
        raise DutyError("check_date: must not be in the future")
    with conn.transaction():
        site = conn.execute(
            "SELECT business_type FROM duty_sites WHERE site_id = %s", (site_id,)
        ).fetchone()
        if site is None:
            raise DutyError(f"site_id: site {site_id} keeps no daily duties; set them first")
        checklist = checklist_for(conn, site_id=site_id, business_type=str(site[0]))
        items = {i.key: i for i in checklist.items}
        _check_answers(conn, site_id, data.answers, items)
        row = conn.execute(
            """INSERT INTO daily_checks (site_id, check_date, business_type, template_source,
                                         completed_by, completed_at)
               VALUES (%s, %s, %s, %s, %s, %s)
               ON CONFLICT (site_id, check_date) DO NOTHING RETURNING id""",
            (site_id, day, site[0], checklist.source, actor, now),
        ).fetchone()
        if row is None:
            raise DutyConflictError(f"check_date: the check of {day} is recorded already")
        check_id = int(row[0])
        for a in data.answers:
            item = items[a.item]
            conn.execute(
                """INSERT INTO daily_check_answers (check_id, item_key, label, ok, note,
                                                    photo_sha256)
                   VALUES (%s, %s, %s, %s, %s, %s)""",
                (check_id, a.item, f"{item.zh} {item.en}", a.ok, a.note, a.photo_sha256),
            )
            if not a.ok:
                _no_finding(conn, check_id, site_id, day, a, item.zh, item.en, item.tier, now)
        if any(not a.ok for a in data.answers):
            conn.execute("SELECT pg_notify(%s, %s)", (FINDINGS_CHANNEL, f"daily_check:{check_id}"))
    return check_id


def _check_answers(
    conn: Conn, site_id: str, answers: list[AnswerIn], items: dict[str, Any]
) -> None:
    """Every item answered exactly once, nothing unknown, every photo this site's."""
    seen: set[str] = set()
    for i, a in enumerate(answers):
        if a.item not in items:
            raise DutyError(f"answers.{i}.item: {a.item!r} is not on the site's checklist")
        if a.item in seen:
            raise DutyError(f"answers.{i}.item: {a.item!r} is answered twice")
        seen.add(a.item)
        if a.photo_sha256 is not None and (
            conn.execute(
                "SELECT 1 FROM duty_photos WHERE site_id = %s AND sha256 = %s",
                (site_id, a.photo_sha256),
            ).fetchone()
            is None
        ):
            raise DutyError(f"answers.{i}.photo_sha256: no such photo uploaded for site {site_id}")
    missing = [k for k in items if k not in seen]
    if missing:
        raise DutyError(f"answers: items not answered: {', '.join(missing)}")


def _no_finding(  # noqa: PLR0917 - one row's columns
    conn: Conn,
    check_id: int,
    site_id: str,
    day: date,
    answer: AnswerIn,
    zh: str,
    en: str,
    tier: int,
    now: datetime,
) -> None:
    """The finding of one "no": the engine turns it into a ticket with the photo's hash."""
    conn.execute(
        """INSERT INTO findings (finding_key, kind, site_id, subject, rule, tier, occurred_at,
                                 payload)
           VALUES (%s, 'manual', %s, %s, %s, %s, %s, %s)
           ON CONFLICT (finding_key) DO NOTHING""",
        (
            f"daily_check:{check_id}:{answer.item}",
            site_id,
            answer.item,
            RULE_NO,
            tier,
            now,
            Jsonb(
                {
                    "daily_check_id": check_id,
                    "check_date": day.isoformat(),
                    "item": answer.item,
                    "item_zh": zh,
                    "item_en": en,
                    "note": answer.note,
                    "photo_sha256": answer.photo_sha256,
                }
            ),
        ),
    )


_CHECK_SELECT = """SELECT c.id, c.site_id, c.check_date, c.business_type, c.template_source,
       c.completed_by,
       coalesce((SELECT pe.name FROM users u JOIN people pe ON pe.id = u.person_id
                 WHERE u.username = c.completed_by), c.completed_by) AS completed_by_name,
       c.completed_at,
       coalesce((SELECT json_agg(json_build_object('item', a.item_key, 'label', a.label,
                     'ok', a.ok, 'note', a.note, 'photo_sha256', a.photo_sha256)
                     ORDER BY a.item_key)
                 FROM daily_check_answers a WHERE a.check_id = c.id), '[]') AS answers,
       (SELECT count(*) FROM daily_check_answers a
        WHERE a.check_id = c.id AND NOT a.ok)::int AS findings
FROM daily_checks c"""


def get_daily_check(conn: Conn, *, check_id: int) -> DailyCheckPublic:
    """One stored check (the caller checked the scope)."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(f"{_CHECK_SELECT} WHERE c.id = %s", (check_id,)).fetchone()
    assert row is not None
    return DailyCheckPublic.model_validate(row)


def list_daily_checks(
    conn: Conn, *, site_id: str, scope: SiteScope, since: date | None, limit: int
) -> list[DailyCheckPublic]:
    """The site's daily checks, newest day first."""
    require_site(conn, scope, site_id)
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            f"""{_CHECK_SELECT} WHERE c.site_id = %(site)s
                  AND (%(since)s::date IS NULL OR c.check_date >= %(since)s)
                ORDER BY c.check_date DESC LIMIT %(limit)s""",
            {"site": site_id, "since": since, "limit": limit},
        ).fetchall()
    return [DailyCheckPublic.model_validate(r) for r in rows]
