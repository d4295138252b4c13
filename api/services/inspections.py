"""Inspections: checklists, per-item results, photos, the rectification notice, follow-ups.

A failed item becomes a finding (kind ``inspection``, key ``inspection:<id>:<code>``,
subject ``inspection-item:<code>``) that the ticket engine turns into a ticket like any
other source, so deadlines, occurrences, notifications and escalation work the same.
The item's ticket is found back through the finding key. A follow-up inspection
(``follow_up_of``) whose item passes closes that ticket with a recorded reason.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from api.auth.scope import SiteScope
from api.input_types import IsoDateTime
from api.services.evidence import EvidenceStore, check_image
from api.services.tickets import FINDINGS_CHANNEL
from bkcommon.errors import RequestError
from bkcommon.localtime import local_date

logger = logging.getLogger(__name__)

Conn = psycopg.Connection[Any]

_CODE = r"^[A-Za-z0-9_.-]{1,40}$"

CLOCK_SKEW = timedelta(minutes=10)
"""An inspection may be stamped this far ahead of the server's clock (a tablet runs fast)."""


class NotFoundError(RequestError, LookupError):
    """The thing does not exist, or lies outside the caller's scope (same answer for both)."""

    status_code = 404


class ConflictError(RequestError):
    """The request contradicts the current state (e.g. a notice signed twice)."""

    status_code = 409


class UnprocessableError(RequestError):
    """The request is well-formed but does not fit what it refers to (an item not in its
    template, a follow-up of another site's inspection)."""

    status_code = 422


class InspectionKind(StrEnum):
    """Routine, special (专项), joint (联合检查), random (随机查), public spot check (百姓点检)."""

    ROUTINE = "routine"
    SPECIAL = "special"
    JOINT = "joint"
    RANDOM = "random"
    PUBLIC_SPOT = "public_spot"


class ItemResult(StrEnum):
    """Outcome of one checklist item."""

    PASS = "pass"  # noqa: S105 - a result, not a password
    FAIL = "fail"
    NA = "na"


class ChecklistItem(BaseModel):
    """One line of a checklist template."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(pattern=_CODE, description="Unique within the template, e.g. 'cold.1'.")
    text_zh: str = Field(min_length=1, max_length=500)
    text_en: str = Field(default="", max_length=500)
    tier: int = Field(default=2, ge=1, le=3, description="Tier of the ticket a failure opens.")
    rule: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9_]{1,60}$",
        description="Ticket rule on failure; default 'inspection_<code>'.",
    )


def _unique_codes(codes: list[str]) -> None:
    seen: set[str] = set()
    for c in codes:
        if c in seen:
            raise ValueError(f"item code {c!r} appears twice")
        seen.add(c)


class TemplateCreate(BaseModel):
    """A new checklist template."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    kind: InspectionKind
    items: list[ChecklistItem] = Field(min_length=1, max_length=500)

    @model_validator(mode="after")
    def _codes(self) -> TemplateCreate:
        _unique_codes([i.code for i in self.items])
        return self


class TemplatePublic(BaseModel):
    """A checklist template."""

    id: int
    name: str
    kind: InspectionKind
    items: list[ChecklistItem]
    created_at: datetime


class ItemResultIn(BaseModel):
    """The result of one item; text, tier and rule come from the template when there is one."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(pattern=_CODE)
    result: ItemResult
    note: str = Field(default="", max_length=2000)
    text_zh: str | None = Field(default=None, max_length=500)
    text_en: str | None = Field(default=None, max_length=500)
    tier: int | None = Field(default=None, ge=1, le=3)
    rule: str | None = Field(default=None, pattern=r"^[a-z0-9_]{1,60}$")


InspectorName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)
]


class InspectionCreate(BaseModel):
    """A finished inspection with its results (one request, as the inspector submits it)."""

    model_config = ConfigDict(extra="forbid")

    site_id: str = Field(min_length=1, max_length=100)
    kind: InspectionKind
    template_id: int | None = None
    inspectors: list[InspectorName] = Field(min_length=1, max_length=20)
    started_at: IsoDateTime
    finished_at: IsoDateTime | None = None
    follow_up_of: int | None = Field(
        default=None, description="The inspection whose failed items this one re-checks."
    )
    notes: str = Field(default="", max_length=5000)
    items: list[ItemResultIn] = Field(min_length=1, max_length=500)

    @model_validator(mode="after")
    def _check(self) -> InspectionCreate:
        _unique_codes([i.code for i in self.items])
        if self.finished_at is not None and self.finished_at < self.started_at:
            raise ValueError("finished_at is before started_at")
        return self


class InspectionItemPublic(BaseModel):
    """One item's result, with the ticket a failure opened (once the engine has run)."""

    code: str
    result: ItemResult
    note: str
    tier: int
    rule: str
    text_zh: str
    text_en: str
    ticket_id: int | None
    ticket_no: str | None
    ticket_status: str | None
    due_at: datetime | None
    photos: list[str] = Field(description="sha256 of the photos of this item.")


class InspectionPublic(BaseModel):
    """An inspection with its items."""

    id: int
    site_id: str
    kind: InspectionKind
    template_id: int | None
    inspectors: list[str]
    started_at: datetime
    finished_at: datetime | None
    follow_up_of: int | None
    notice_no: str | None
    notice_signed_by: str | None
    notice_signed_at: datetime | None
    notes: str
    items: list[InspectionItemPublic]
    photos: list[str] = Field(description="sha256 of photos not tied to one item.")
    verified_ticket_ids: list[int] = Field(
        default_factory=list, description="Tickets this follow-up inspection closed."
    )
    replayed: bool = Field(
        default=False, exclude=True, description="Answered again for a retried request."
    )


def finding_key(inspection_id: int, code: str) -> str:
    """Idempotency key of the finding a failed item writes."""
    return f"inspection:{inspection_id}:{code}"


def item_subject(code: str) -> str:
    """Ticket subject of a checklist item: one open ticket per site, rule and item."""
    return f"inspection-item:{code}"


def create_template(*, conn: Conn, data: TemplateCreate) -> TemplatePublic:
    """Store a checklist template."""
    items = [i.model_dump() for i in data.items]
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            "INSERT INTO checklist_templates (name, kind, items) VALUES (%s, %s, %s) "
            "RETURNING id, name, kind, items, created_at",
            (data.name, data.kind.value, Jsonb(items)),
        ).fetchone()
    assert row is not None
    return TemplatePublic.model_validate(row)


def list_templates(*, conn: Conn) -> list[TemplatePublic]:
    """All checklist templates, oldest first."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "SELECT id, name, kind, items, created_at FROM checklist_templates ORDER BY id"
        ).fetchall()
    return [TemplatePublic.model_validate(r) for r in rows]


def _resolve_items(conn: Conn, data: InspectionCreate) -> list[dict[str, Any]]:
    """Each result with text, tier and rule filled from the template (or the defaults)."""
    template: dict[str, ChecklistItem] = {}
    if data.template_id is not None:
        row = conn.execute(
            "SELECT items FROM checklist_templates WHERE id = %s", (data.template_id,)
        ).fetchone()
        if row is None:
            raise UnprocessableError(f"checklist template {data.template_id} does not exist")
        template = {i["code"]: ChecklistItem.model_validate(i) for i in row[0]}
    out = []
    for r in data.items:
        t = template.get(r.code)
        if template and t is None:
            raise UnprocessableError(f"item {r.code!r} is not in template {data.template_id}")
        out.append(
            {
                "code": r.code,
                "result": r.result.value,
                "note": r.note,
                "text_zh": r.text_zh or (t.text_zh if t else r.code),
                "text_en": r.text_en or (t.text_en if t else ""),
                "tier": r.tier or (t.tier if t else 2),
                "rule": r.rule or (t.rule if t and t.rule else f"inspection_{r.code}".lower()),
            }
        )
    return out


def create_inspection(
    *, conn: Conn, data: InspectionCreate, scope: SiteScope, actor: str, now: datetime
) -> InspectionPublic:
    """Record an inspection; failed items become findings; a follow-up closes what passes.

    Raises NotFoundError (404: site or earlier inspection unknown / out of scope) and
    UnprocessableError (422: an unknown template, items that do not fit it, a follow-up
    of another site); the app answers both.
    """
    if not scope.allows(data.site_id):
        raise NotFoundError(f"site {data.site_id} not found")
    for name, at in (("started_at", data.started_at), ("finished_at", data.finished_at)):
        if at is not None and at > now + CLOCK_SKEW:
            raise UnprocessableError(f"{name}: {at.isoformat()} is in the future")
    finished = data.finished_at or max(now, data.started_at)
    closed: list[int] = []
    with conn.transaction():
        if conn.execute("SELECT 1 FROM sites WHERE id = %s", (data.site_id,)).fetchone() is None:
            raise NotFoundError(f"site {data.site_id} not found")
        items = _resolve_items(conn, data)
        same = _already_recorded(conn, data, items, actor=actor)
        if same is not None:
            result = get_inspection(conn=conn, inspection_id=same, scope=scope)
            assert result is not None
            return result.model_copy(update={"replayed": True})
        if data.follow_up_of is not None:
            prev = conn.execute(
                "SELECT site_id, started_at FROM inspections WHERE id = %s",
                (data.follow_up_of,),
            ).fetchone()
            if prev is None:
                raise NotFoundError(f"inspection {data.follow_up_of} not found")
            if prev[0] != data.site_id:
                raise UnprocessableError("a follow-up inspection must be of the same site")
            if data.started_at < prev[1]:
                raise UnprocessableError(
                    f"started_at: before inspection {data.follow_up_of}, which it follows up"
                )
        row = conn.execute(
            """INSERT INTO inspections (site_id, kind, template_id, inspectors, started_at,
                                        finished_at, follow_up_of, notes, created_by)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id""",
            (
                data.site_id,
                data.kind.value,
                data.template_id,
                data.inspectors,
                data.started_at,
                finished,
                data.follow_up_of,
                data.notes,
                actor,
            ),
        ).fetchone()
        assert row is not None
        inspection_id = int(row[0])
        occurred = finished
        for it in items:
            conn.execute(
                """INSERT INTO inspection_items (inspection_id, code, result, note, tier, rule,
                                                 text_zh, text_en)
                   VALUES (%(id)s, %(code)s, %(result)s, %(note)s, %(tier)s, %(rule)s,
                           %(text_zh)s, %(text_en)s)""",
                {"id": inspection_id, **it},
            )
            if it["result"] == ItemResult.FAIL:
                _write_finding(conn, data, inspection_id, it, occurred)
        if data.follow_up_of is not None:
            closed = _verify_follow_up(conn, data, inspection_id, items, now=now)
        if any(it["result"] == ItemResult.FAIL for it in items):
            conn.execute(
                "SELECT pg_notify(%s, %s)", (FINDINGS_CHANNEL, f"inspection:{inspection_id}")
            )
    logger.info(
        "inspection %s of %s: %d item(s), %d failed, %d ticket(s) verified closed",
        inspection_id,
        data.site_id,
        len(items),
        sum(it["result"] == ItemResult.FAIL for it in items),
        len(closed),
        extra={"site_id": data.site_id},
    )
    result = get_inspection(conn=conn, inspection_id=inspection_id, scope=scope)
    assert result is not None
    return result.model_copy(update={"verified_ticket_ids": closed})


def _already_recorded(
    conn: Conn, data: InspectionCreate, items: list[dict[str, Any]], *, actor: str
) -> int | None:
    """The inspection this request already recorded (a retry after a lost answer), or None.

    The same person, site, kind, start instant and inspection followed up is the same
    inspection: with the same
    results it is answered again (200) instead of recorded twice (its failed items would
    count again on their tickets); with other results it is a conflict (409). The lock
    makes two copies of one request in flight at once wait for each other.
    """
    conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"inspection:{data.site_id}",))
    row = conn.execute(
        """SELECT id FROM inspections
           WHERE site_id = %s AND started_at = %s AND kind = %s AND created_by = %s
             AND follow_up_of IS NOT DISTINCT FROM %s
           ORDER BY id LIMIT 1""",
        (data.site_id, data.started_at, data.kind.value, actor, data.follow_up_of),
    ).fetchone()
    if row is None:
        return None
    stored = conn.execute(
        "SELECT code, result, note FROM inspection_items WHERE inspection_id = %s ORDER BY code",
        (row[0],),
    ).fetchall()
    wanted = sorted((it["code"], str(it["result"]), it["note"]) for it in items)
    if [(c, str(r), n) for c, r, n in stored] != wanted:
        raise ConflictError(
            f"inspection {row[0]} of {data.site_id} starting at {data.started_at.isoformat()} "
            "is already recorded with other results"
        )
    return int(row[0])


def _write_finding(
    conn: Conn, data: InspectionCreate, inspection_id: int, item: dict[str, Any], at: datetime
) -> None:
    """The finding of one failed item, for the ticket engine."""
    conn.execute(
        """INSERT INTO findings (finding_key, kind, site_id, subject, rule, tier, occurred_at,
                                 payload)
           VALUES (%s, 'inspection', %s, %s, %s, %s, %s, %s)
           ON CONFLICT (finding_key) DO NOTHING""",
        (
            finding_key(inspection_id, item["code"]),
            data.site_id,
            item_subject(item["code"]),
            item["rule"],
            item["tier"],
            at,
            Jsonb(
                {
                    "inspection_id": inspection_id,
                    "code": item["code"],
                    "text_zh": item["text_zh"],
                    "subject_name": item["text_zh"],  # the ticket names the item, not its id
                    "text_en": item["text_en"],
                    "note": item["note"],
                    "inspectors": data.inspectors,
                    "inspection_kind": data.kind.value,
                }
            ),
        ),
    )


def _verify_follow_up(
    conn: Conn,
    data: InspectionCreate,
    inspection_id: int,
    items: list[dict[str, Any]],
    *,
    now: datetime,
) -> list[int]:
    """Close the open tickets of the earlier inspection's failed items that now pass."""
    passed = [it for it in items if it["result"] == ItemResult.PASS]
    closed: list[int] = []
    for it in passed:
        failed = conn.execute(
            """SELECT ii.rule, f.ticket_id FROM inspection_items ii
               LEFT JOIN findings f ON f.finding_key = %s
               WHERE ii.inspection_id = %s AND ii.code = %s AND ii.result = 'fail'""",
            (finding_key(int(data.follow_up_of or 0), it["code"]), data.follow_up_of, it["code"]),
        ).fetchone()
        if failed is None:
            continue
        ticket = conn.execute(
            """SELECT id FROM tickets
               WHERE status <> 'closed'
                 AND (id = %s OR (site_id = %s AND rule = %s AND subject = %s))
               ORDER BY (id = %s) DESC LIMIT 1 FOR UPDATE""",
            (failed[1], data.site_id, failed[0], item_subject(it["code"]), failed[1]),
        ).fetchone()
        if ticket is None:
            continue
        ticket_id = int(ticket[0])
        conn.execute(
            """UPDATE tickets SET status = 'closed', closed_at = %s, verified_by = %s
               WHERE id = %s""",
            (now, f"inspection:{inspection_id}", ticket_id),
        )
        conn.execute(
            """INSERT INTO ticket_events (ticket_id, at, actor, kind, note, data)
               VALUES (%s, %s, %s, 'closed', %s, %s)""",
            (
                ticket_id,
                now,
                f"inspection:{inspection_id}",
                f"verified by inspection {inspection_id}",
                Jsonb({"inspection_id": inspection_id, "code": it["code"], "verified": True}),
            ),
        )
        closed.append(ticket_id)
    return closed


_ITEMS_SQL = """
SELECT ii.code, ii.result, ii.note, ii.tier, ii.rule, ii.text_zh, ii.text_en,
       t.id AS ticket_id, t.ticket_no, t.status AS ticket_status, t.due_at,
       coalesce((SELECT array_agg(p.sha256 ORDER BY p.at, p.sha256) FROM inspection_photos p
                 WHERE p.inspection_id = ii.inspection_id AND p.item_code = ii.code),
                '{}') AS photos
FROM inspection_items ii
LEFT JOIN findings f ON f.finding_key = 'inspection:' || ii.inspection_id || ':' || ii.code
LEFT JOIN tickets t ON t.id = f.ticket_id
WHERE ii.inspection_id = %s
ORDER BY ii.code
"""


def get_inspection(*, conn: Conn, inspection_id: int, scope: SiteScope) -> InspectionPublic | None:
    """One inspection with its items and their tickets, or None (absent or out of scope)."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            f"""SELECT i.id, i.site_id, i.kind, i.template_id, i.inspectors, i.started_at,
                       i.finished_at, i.follow_up_of, i.notice_no, i.notice_signed_by,
                       i.notice_signed_at, i.notes,
                       coalesce((SELECT array_agg(p.sha256 ORDER BY p.at, p.sha256)
                                 FROM inspection_photos p
                                 WHERE p.inspection_id = i.id AND p.item_code = ''),
                                '{{}}') AS photos
                FROM inspections i
                WHERE i.id = %(id)s AND {scope.clause("i.site_id")}""",
            {"id": inspection_id, **scope.params()},
        ).fetchone()
        if row is None:
            return None
        items = cur.execute(_ITEMS_SQL, (inspection_id,)).fetchall()
    return InspectionPublic.model_validate(
        {**row, "items": [InspectionItemPublic.model_validate(i) for i in items]}
    )


class InspectionSummary(BaseModel):
    """An inspection as listed."""

    id: int
    site_id: str
    kind: InspectionKind
    started_at: datetime
    finished_at: datetime | None
    follow_up_of: int | None
    notice_no: str | None
    items: int
    failed: int


def list_inspections(
    *, conn: Conn, scope: SiteScope, site_id: str | None, limit: int, offset: int
) -> list[InspectionSummary]:
    """Inspections in scope, newest first."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            f"""SELECT i.id, i.site_id, i.kind, i.started_at, i.finished_at, i.follow_up_of,
                       i.notice_no,
                       (SELECT count(*) FROM inspection_items ii WHERE ii.inspection_id = i.id)
                           AS items,
                       (SELECT count(*) FROM inspection_items ii
                        WHERE ii.inspection_id = i.id AND ii.result = 'fail') AS failed
                FROM inspections i
                WHERE (%(site)s::text IS NULL OR i.site_id = %(site)s)
                  AND {scope.clause("i.site_id")}
                ORDER BY i.started_at DESC, i.id DESC LIMIT %(limit)s OFFSET %(offset)s""",
            {"site": site_id, "limit": limit, "offset": offset, **scope.params()},
        ).fetchall()
    return [InspectionSummary.model_validate(r) for r in rows]


def add_photo(
    *,
    conn: Conn,
    store: EvidenceStore,
    inspection_id: int,
    item_code: str,
    content: bytes,
    scope: SiteScope,
) -> str:
    """Check the image, keep it in the evidence store by content hash, attach it; its sha256.

    Raises the evidence store's errors for what is not a JPEG / PNG, NotFoundError for an
    unknown inspection or item.
    """
    info = check_image(content)
    sha = hashlib.sha256(content).hexdigest()
    with conn.transaction():
        row = conn.execute(
            f"""SELECT notice_signed_at FROM inspections
                WHERE id = %(id)s AND {scope.clause("site_id")} FOR UPDATE""",
            {"id": inspection_id, **scope.params()},
        ).fetchone()
        if row is None:
            raise NotFoundError(f"inspection {inspection_id} not found")
        if row[0] is not None:
            raise ConflictError(
                f"the notice of inspection {inspection_id} is signed: its evidence is final"
            )
        if item_code and (
            conn.execute(
                "SELECT 1 FROM inspection_items WHERE inspection_id = %s AND code = %s",
                (inspection_id, item_code),
            ).fetchone()
            is None
        ):
            raise NotFoundError(f"inspection {inspection_id} has no item {item_code!r}")
        store.put(sha, content)
        conn.execute(
            "INSERT INTO inspection_photos (inspection_id, item_code, sha256, media_type) "
            "VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (inspection_id, item_code, sha, info.media_type),
        )
    return sha


def sign_notice(
    *,
    conn: Conn,
    inspection_id: int,
    signed_by: str,
    scope: SiteScope,
    now: datetime,
    actor: str | None = None,
) -> InspectionPublic:
    """Sign the rectification notice (整改通知书) once; it gets its number then.

    The signer is the signed-in user (``actor``) or one of the inspection's inspectors.
    """
    current = get_inspection(conn=conn, inspection_id=inspection_id, scope=scope)
    if current is None:
        raise NotFoundError(f"inspection {inspection_id} not found")
    if signed_by != actor and signed_by not in current.inspectors:
        raise UnprocessableError(f"signed_by: {signed_by!r} is not an inspector of this inspection")
    if not any(i.result is ItemResult.FAIL for i in current.items):
        raise ConflictError("nothing to rectify: no item failed")
    row = conn.execute(
        """UPDATE inspections SET notice_no = %s, notice_signed_by = %s, notice_signed_at = %s
           WHERE id = %s AND notice_signed_at IS NULL RETURNING id""",
        (f"ZGTZ-{local_date(now):%Y%m%d}-{inspection_id:06d}", signed_by, now, inspection_id),
    ).fetchone()
    if row is None:
        raise ConflictError(f"the notice of inspection {inspection_id} is already signed")
    signed = get_inspection(conn=conn, inspection_id=inspection_id, scope=scope)
    assert signed is not None
    return signed
