"""Complaints from the public (百姓点检): receive → classify → dispatch → feedback → rating.

- *Receive*: the public form of a published canteen (no sign-in). Text up to 2,000
  characters, an optional contact, up to 3 photos through the evidence checks; limited per
  client address (``BK_COMPLAINT_PER_CLIENT_PER_HOUR``, default 5) and per canteen
  (``BK_COMPLAINT_PER_SITE_PER_HOUR``, default 60) with 429 past it. The client address is
  kept only as a sha256 for the limit. The complainant gets a random tracking code.
- *Classify*: the capture-triage setting (``api.services.triage.triage_mode``, camera
  ``public``, rule ``public_complaint``) decides: ``review`` (the default here, whatever
  the capture default) puts the complaint in the regulator's queue; ``direct`` dispatches at
  once.
- *Dispatch*: confirming writes a finding (kind ``complaint``, rule ``public_complaint``) and
  opens the ticket through the engine's own path (``open_or_add``), with the complaint's
  photos as ticket evidence, so the officers are notified and the ticket escalates like any
  other. Dismissing needs a reply, which the complainant reads.
- *Feedback*: the tracking page shows the stage (received, dispatched, rectified, closed,
  dismissed) and the regulator's reply; never names, phones or the contact.
- *Rating*: once closed or dismissed, satisfied / unsatisfied, once, with an optional comment
  (a timeline entry on the ticket).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from api.auth.scope import SiteScope
from api.services.evidence import (
    EvidenceError,
    EvidenceStore,
    ImageInfo,
    check_image,
    strip_metadata,
)
from api.services.publication import effective_for_site
from api.services.tickets import load_finding, open_or_add
from api.services.triage import triage_mode
from api.settings import ApiSettings
from bkcommon.errors import RequestError

logger = logging.getLogger(__name__)

Conn = psycopg.Connection[Any]

RULE = "public_complaint"
KIND = "complaint"
"""Finding kind (and ticket source) of a confirmed complaint."""
TRIAGE_CAMERA = "public"  # the triage_modes camera id that stands for the public form
BODY_MAX = 2000
CONTACT_MAX = 100
COMMENT_MAX = 500
REPLY_MAX = 1000
MAX_PHOTOS = 3
_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L: read over the phone


class ComplaintSettings(BaseSettings):
    """Limits of the public complaint form (environment prefix ``BK_COMPLAINT_``)."""

    model_config = SettingsConfigDict(env_prefix="BK_COMPLAINT_", extra="ignore")

    per_client_per_hour: int = Field(default=5, ge=1, le=10_000)
    per_site_per_hour: int = Field(default=60, ge=1, le=100_000)
    tier: int = Field(default=2, ge=1, le=3, description="Tier of a confirmed complaint's ticket.")


class ComplaintError(RequestError):
    """The complaint cannot take this action in its current state (409)."""

    status_code = 409


class ComplaintNotFoundError(RequestError, LookupError):
    """No such complaint, tracking code or public canteen (404)."""

    status_code = 404


class ComplaintInputError(RequestError):
    """A field of the form is refused (422); the message names it."""

    status_code = 422


class RateLimitedError(RequestError):
    """Too many complaints from this client or for this canteen in the last hour (429)."""

    status_code = 429


Stage = Literal["received", "dispatched", "rectified", "closed", "dismissed"]


@dataclass(frozen=True, slots=True)
class Tracking:
    """What the complainant sees by tracking code: nothing personal, nothing internal."""

    tracking_code: str
    site_id: str
    site_name: str
    received_at: datetime
    stage: Stage
    reply: str
    ticket_no: str | None
    dispatched_at: datetime | None
    rectified_at: datetime | None
    closed_at: datetime | None
    rating: str | None
    can_rate: bool


class ComplaintPublic(BaseModel):
    """A complaint as the regulator sees it (contact included; the client hash never)."""

    id: int
    tracking_code: str
    site_id: str
    body: str
    contact: str
    status: str
    photos: list[str]
    ticket_id: int | None
    ticket_no: str | None = Field(default=None, description="The confirmed complaint's ticket.")
    reply: str
    decided_by: str | None
    decided_at: datetime | None
    rating: str | None
    rating_comment: str
    rated_at: datetime | None
    created_at: datetime


def new_tracking_code() -> str:
    """12 random characters (≈ 59 bits) in three groups: ``XXXX-XXXX-XXXX``."""
    raw = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(12))
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"


def client_hash(address: str) -> str:
    """What is kept of the client's address: enough to count, not to read back directly."""
    return hashlib.sha256(f"bk-complaint:{address}".encode()).hexdigest()


def submit(
    conn: Conn,
    *,
    store: EvidenceStore,
    site_id: str,
    body: str,
    contact: str,
    photos: list[bytes],
    client_address: str,
    now: datetime,
    limits: ComplaintSettings,
    api_settings: ApiSettings,
) -> str:
    """Receive a complaint for a published canteen; return its tracking code."""
    body, contact = body.strip(), contact.strip()
    if not body:
        raise ComplaintInputError("body: describe what you saw")
    if len(body) > BODY_MAX:
        raise ComplaintInputError(f"body: at most {BODY_MAX} characters")
    if len(contact) > CONTACT_MAX:
        raise ComplaintInputError(f"contact: at most {CONTACT_MAX} characters")
    if len(photos) > MAX_PHOTOS:
        raise ComplaintInputError(f"photos: at most {MAX_PHOTOS}")
    found = effective_for_site(conn, site_id)
    if found is None or found[1] is None or not (found[1].enabled and found[1].accept_complaints):
        raise ComplaintNotFoundError(f"canteen {site_id} not found")
    who = client_hash(client_address)
    _check_limits(conn, who=who, site_id=site_id, now=now, limits=limits)  # before decoding
    infos = [_checked(i, p) for i, p in enumerate(photos)]  # before anything is stored
    # what a photo says about its sender (EXIF GPS, the phone) never reaches the canteen
    photos = [strip_metadata(p, info) for p, info in zip(photos, infos, strict=True)]
    code = new_tracking_code()
    with conn.transaction():
        # the canteen's lock, then the client's (always in this order): with the client's
        # alone, concurrent complaints from many addresses passed the canteen's hourly limit
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"complaint-site:{site_id}",))
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"complaint:{who}",))
        _check_limits(conn, who=who, site_id=site_id, now=now, limits=limits)
        row = conn.execute(
            """INSERT INTO complaints (tracking_code, site_id, body, contact, client_hash,
                                       created_at)
               VALUES (%s, %s, %s, %s, %s, %s) RETURNING id""",
            (code, site_id, body, contact, who, now),
        ).fetchone()
        assert row is not None
        complaint_id = int(row[0])
        for data, info in zip(photos, infos, strict=True):
            sha = hashlib.sha256(data).hexdigest()
            store.put(sha, data)
            conn.execute(
                """INSERT INTO complaint_photos (complaint_id, sha256, media_type, size_bytes)
                   VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING""",
                (complaint_id, sha, info.media_type, len(data)),
            )
        mode = triage_mode(conn, camera_id=TRIAGE_CAMERA, rule=RULE, default="review")
        if mode == "direct":
            _dispatch(
                conn, complaint_id, actor="system", reply="", now=now, limits=limits,
                api_settings=api_settings,
            )  # fmt: skip
    logger.info("complaint %s received for %s (%s)", complaint_id, site_id, mode,
                extra={"site_id": site_id})  # fmt: skip
    return code


def _check_limits(
    conn: Conn, *, who: str, site_id: str, now: datetime, limits: ComplaintSettings
) -> None:
    """Refuse a complaint past the hourly limits of its connection or its canteen (429)."""
    by_client, by_site = conn.execute(
        """SELECT count(*) FILTER (WHERE client_hash = %(who)s),
                  count(*) FILTER (WHERE site_id = %(site)s)
           FROM complaints WHERE created_at > %(hour)s
             AND (client_hash = %(who)s OR site_id = %(site)s)""",
        {"who": who, "site": site_id, "hour": now - timedelta(hours=1)},
    ).fetchone() or (0, 0)
    if by_client >= limits.per_client_per_hour:
        raise RateLimitedError(
            f"at most {limits.per_client_per_hour} complaints an hour from one connection"
        )
    if by_site >= limits.per_site_per_hour:
        raise RateLimitedError("this canteen received many complaints this hour; try later")


def _checked(index: int, data: bytes) -> ImageInfo:
    """The evidence checks (type, bombs, decoding), the refusal naming the photo."""
    try:
        return check_image(data)
    except EvidenceError as exc:
        raise type(exc)(f"photos[{index}]: {exc}") from exc


_COLUMNS = """c.id, c.tracking_code, c.site_id, c.body, c.contact, c.status,
coalesce((SELECT array_agg(p.sha256 ORDER BY p.sha256) FROM complaint_photos p
          WHERE p.complaint_id = c.id), '{}') AS photos,
c.ticket_id, (SELECT t.ticket_no FROM tickets t WHERE t.id = c.ticket_id) AS ticket_no,
c.reply, c.decided_by, c.decided_at, c.rating, c.rating_comment, c.rated_at, c.created_at"""


def list_complaints(
    conn: Conn, *, scope: SiteScope, status: str | None, limit: int, offset: int
) -> list[ComplaintPublic]:
    """Complaints about sites in scope, oldest pending first; ``decided`` (confirmed or
    dismissed) newest first, as a record of decisions is read."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            f"""SELECT {_COLUMNS} FROM complaints c
                WHERE {scope.clause("c.site_id")}
                  AND (%(status)s::text IS NULL OR c.status = %(status)s
                       OR (%(status)s = 'decided' AND c.status <> 'received'))
                ORDER BY CASE WHEN %(status)s::text = 'decided' THEN -c.id ELSE c.id END
                LIMIT %(limit)s OFFSET %(offset)s""",
            {"status": status, "limit": limit, "offset": offset, **scope.params()},
        ).fetchall()
    return [ComplaintPublic.model_validate(r) for r in rows]


def get_complaint(conn: Conn, *, complaint_id: int, scope: SiteScope) -> ComplaintPublic | None:
    """One complaint in scope, or None."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            f"SELECT {_COLUMNS} FROM complaints c "
            f"WHERE c.id = %(id)s AND {scope.clause('c.site_id')}",
            {"id": complaint_id, **scope.params()},
        ).fetchone()
    return None if row is None else ComplaintPublic.model_validate(row)


def _lock_received(conn: Conn, complaint_id: int, scope: SiteScope) -> None:
    row = conn.execute(
        f"SELECT status FROM complaints WHERE id = %(id)s AND {scope.clause('site_id')} FOR UPDATE",
        {"id": complaint_id, **scope.params()},
    ).fetchone()
    if row is None:
        raise ComplaintNotFoundError(f"complaint {complaint_id} not found")
    if row[0] != "received":
        raise ComplaintError(f"complaint {complaint_id} is already {row[0]}")


def confirm(
    conn: Conn,
    *,
    complaint_id: int,
    actor: str,
    reply: str,
    scope: SiteScope,
    now: datetime,
    limits: ComplaintSettings,
    api_settings: ApiSettings,
) -> int:
    """Confirm a received complaint: its ticket opens on the canteen; the ticket id."""
    with conn.transaction():
        _lock_received(conn, complaint_id, scope)
        return _dispatch(
            conn, complaint_id, actor=actor, reply=reply, now=now, limits=limits,
            api_settings=api_settings,
        )  # fmt: skip


def _dispatch(
    conn: Conn,
    complaint_id: int,
    *,
    actor: str,
    reply: str,
    now: datetime,
    limits: ComplaintSettings,
    api_settings: ApiSettings,
) -> int:
    """Finding → ticket (engine path), photos → ticket evidence, complaint → confirmed."""
    c = conn.execute(
        "SELECT tracking_code, site_id, body, created_at FROM complaints WHERE id = %s",
        (complaint_id,),
    ).fetchone()
    assert c is not None
    code, site_id, body, created_at = str(c[0]), str(c[1]), str(c[2]), c[3]
    photos = conn.execute(
        "SELECT sha256, media_type, size_bytes FROM complaint_photos WHERE complaint_id = %s",
        (complaint_id,),
    ).fetchall()
    row = conn.execute(
        """INSERT INTO findings (finding_key, kind, site_id, subject, rule, tier, occurred_at,
                                 payload)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id""",
        (
            f"complaint:{complaint_id}",
            KIND,
            site_id,
            f"投诉 {code}",
            RULE,
            limits.tier,
            created_at,
            Jsonb({"complaint_id": complaint_id, "text": body, "photos": [p[0] for p in photos]}),
        ),
    ).fetchone()
    assert row is not None
    finding = load_finding(conn, int(row[0]))
    assert finding is not None
    outcome = open_or_add(conn, finding, now=now, settings=api_settings)
    assert outcome.ticket_id is not None
    for sha, media_type, size in photos:
        conn.execute(
            """INSERT INTO ticket_evidence (ticket_id, sha256, kind, media_type, size_bytes,
                                            filename, uploaded_by, at)
               VALUES (%s, %s, 'photo', %s, %s, 'complaint', 'public', %s)
               ON CONFLICT DO NOTHING""",
            (outcome.ticket_id, sha, media_type, size, now),
        )
    conn.execute(
        """UPDATE complaints SET status = 'confirmed', ticket_id = %s, finding_id = %s,
               decided_by = %s, decided_at = %s, reply = %s WHERE id = %s""",
        (outcome.ticket_id, finding.id, actor, now, reply, complaint_id),
    )
    conn.execute(
        "INSERT INTO ticket_events (ticket_id, at, actor, kind, data) "
        "VALUES (%s, %s, %s, 'complaint_confirmed', %s)",
        (outcome.ticket_id, now, actor, Jsonb({"complaint_id": complaint_id})),
    )
    logger.info("complaint %s confirmed by %s: ticket %s", complaint_id, actor, outcome.ticket_id)
    return outcome.ticket_id


def dismiss(
    conn: Conn, *, complaint_id: int, actor: str, reply: str, scope: SiteScope, now: datetime
) -> None:
    """Dismiss a received complaint; the reply (required) is what the complainant reads."""
    if not reply.strip():
        raise ComplaintInputError("reply: a dismissal needs a reply to the complainant")
    with conn.transaction():
        _lock_received(conn, complaint_id, scope)
        conn.execute(
            """UPDATE complaints SET status = 'dismissed', reply = %s, decided_by = %s,
                   decided_at = %s WHERE id = %s""",
            (reply.strip(), actor, now, complaint_id),
        )


def track(conn: Conn, *, code: str) -> Tracking | None:
    """The complainant's view of a complaint by its tracking code, or None."""
    with conn.cursor(row_factory=dict_row) as cur:
        r = cur.execute(
            """SELECT c.tracking_code, c.site_id, s.name AS site_name, c.created_at, c.status,
                      c.reply, c.rating, c.decided_at, t.ticket_no, t.status AS ticket_status,
                      t.rectified_at, t.closed_at
               FROM complaints c JOIN sites s ON s.id = c.site_id
               LEFT JOIN tickets t ON t.id = c.ticket_id
               WHERE c.tracking_code = %s""",
            (code.strip().upper(),),
        ).fetchone()
    if r is None:
        return None
    stage: Stage
    if r["status"] == "dismissed":
        stage = "dismissed"
    elif r["status"] == "received":
        stage = "received"
    elif r["ticket_status"] == "closed":
        stage = "closed"
    elif r["ticket_status"] == "rectified":
        stage = "rectified"
    else:
        stage = "dispatched"
    return Tracking(
        tracking_code=r["tracking_code"],
        site_id=r["site_id"],
        site_name=r["site_name"],
        received_at=r["created_at"],
        stage=stage,
        reply=r["reply"],
        ticket_no=r["ticket_no"],
        dispatched_at=r["decided_at"] if r["status"] == "confirmed" else None,
        rectified_at=r["rectified_at"],
        closed_at=r["closed_at"] if stage == "closed" else None,
        rating=r["rating"],
        can_rate=r["rating"] is None and stage in ("closed", "dismissed"),
    )


def rate(
    conn: Conn,
    *,
    code: str,
    rating: Literal["satisfied", "unsatisfied"],
    comment: str,
    now: datetime,
) -> Tracking:
    """Record the complainant's rating once the complaint is closed or dismissed."""
    comment = comment.strip()
    if len(comment) > COMMENT_MAX:
        raise ComplaintInputError(f"comment: at most {COMMENT_MAX} characters")
    view = track(conn, code=code)
    if view is None:
        raise ComplaintNotFoundError("no complaint with this tracking code")
    if view.rating is not None:
        raise ComplaintError("this complaint was rated already")
    if not view.can_rate:
        raise ComplaintError("a complaint can be rated once it is closed or dismissed")
    with conn.transaction():
        row = conn.execute(
            """UPDATE complaints SET rating = %s, rating_comment = %s, rated_at = %s
               WHERE tracking_code = %s AND rating IS NULL RETURNING id, ticket_id""",
            (rating, comment, now, view.tracking_code),
        ).fetchone()
        if row is None:
            raise ComplaintError("this complaint was rated already")
        if row[1] is not None:
            conn.execute(
                "INSERT INTO ticket_events (ticket_id, at, actor, kind, note, data) "
                "VALUES (%s, %s, 'public', 'public_rating', %s, %s)",
                (row[1], now, comment, Jsonb({"complaint_id": row[0], "rating": rating})),
            )
    updated = track(conn, code=code)
    assert updated is not None
    return updated
