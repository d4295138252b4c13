"""Food-safety liability insurance (食品安全责任险): policies, incidents, claim evidence.

A ticket or incident belongs to the policy of its site in force at the time (opened_at,
occurred_at), resolved by ``bk_policy_in_force`` (migrations 0010 and 0038; policy periods
are whole days of the region's calendar, ``BK_TIME_ZONE``, both ends included). The claim
bundle packs what a claim needs into one zip: the incident and its policy, the tickets of
the site around it with their full timelines, the evidence files, and the sensor trace
around the incident.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import zipfile
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import IO, Any

import psycopg
from psycopg.rows import dict_row
from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.auth.scope import SiteScope
from api.input_types import IsoDate, IsoDateTime
from api.services.evidence import EvidenceStore, load_bytes
from api.services.inspections import ConflictError, NotFoundError
from api.services.insurance_sql import own_policy_sql
from api.services.ticket_timeline import TIMELINE_SQL
from bkcommon.localtime import region_zone_name
from bkcommon.timeutil import utcnow

logger = logging.getLogger(__name__)

Conn = psycopg.Connection[Any]

BUNDLE_WINDOW = timedelta(hours=24)
"""Sensor trace and tickets are taken from this long before to this long after an incident."""


class PolicyCreate(BaseModel):
    """A new policy of a site."""

    model_config = ConfigDict(extra="forbid")

    site_id: str = Field(min_length=1)
    insurer: str = Field(min_length=1, max_length=200)
    policy_no: str = Field(min_length=1, max_length=100)
    cover_cny: Decimal = Field(gt=0, max_digits=14, decimal_places=2)
    premium_cny: Decimal = Field(ge=0, max_digits=12, decimal_places=2)
    starts_on: IsoDate
    ends_on: IsoDate

    @model_validator(mode="after")
    def _period(self) -> PolicyCreate:
        if self.ends_on < self.starts_on:
            raise ValueError("ends_on is before starts_on")
        return self


class PolicyPublic(BaseModel):
    """A policy."""

    id: int
    site_id: str
    insurer: str
    policy_no: str
    cover_cny: Decimal
    premium_cny: Decimal
    starts_on: date
    ends_on: date


class ClaimStatus(StrEnum):
    """Where the claim of an incident stands."""

    NONE = "none"
    FILED = "filed"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    PAID = "paid"


class IncidentCreate(BaseModel):
    """A food-safety incident (illness, complaint, foreign object...) at a site."""

    model_config = ConfigDict(extra="forbid")

    site_id: str = Field(min_length=1)
    occurred_at: IsoDateTime
    kind: str = Field(min_length=1, max_length=60)
    description: str = Field(default="", max_length=5000)
    claim_status: ClaimStatus = ClaimStatus.NONE
    amount_cny: Decimal | None = Field(default=None, ge=0, max_digits=14, decimal_places=2)

    @model_validator(mode="after")
    def _happened(self) -> IncidentCreate:
        # an incident has happened (a phone's clock may run a little fast); the years it may
        # be of are IsoDateTime's (2000-2099)
        if self.occurred_at > utcnow() + INCIDENT_CLOCK_SKEW:
            raise ValueError("occurred_at: a time that has passed, not one still to come")
        # the rules of a claim's steps (api/services/claims.py) hold for a claim recorded
        # with its incident too: paid needs the amount, rejected the insurer's reason
        if self.claim_status is ClaimStatus.PAID and self.amount_cny is None:
            raise ValueError("amount_cny: a paid claim needs the amount paid")
        if self.claim_status is ClaimStatus.REJECTED:
            raise ValueError(
                "claim_status: record the incident, then the rejection with the insurer's "
                "reason (POST /incidents/{id}/claim)"
            )
        return self


INCIDENT_CLOCK_SKEW = timedelta(minutes=10)


class IncidentPublic(BaseModel):
    """An incident with the policy in force when it happened (None: uninsured then)."""

    id: int
    site_id: str
    occurred_at: datetime
    kind: str
    description: str
    policy_id: int | None
    claim_status: ClaimStatus
    amount_cny: Decimal | None
    created_at: datetime
    created_by: str = ""
    claim_updated_at: datetime | None = None
    claim_updated_by: str | None = None
    claim_updated_by_name: str | None = Field(
        default=None,
        description="Who recorded the claim's last step as people know them: the person's "
        "name where the user has one, else the username.",
    )


_POLICY_COLS = "id, site_id, insurer, policy_no, cover_cny, premium_cny, starts_on, ends_on"


_INCIDENT_OF_INSURER = (
    "(%(insurer)s::text IS NULL OR "
    + own_policy_sql("incidents.site_id", "incidents.occurred_at")
    + " IS NOT NULL)"
)
"""An incident an insurer may read: one its own policy covered when it occurred (not a
rival's incident, claim and claim amounts on a canteen both insure, or have insured)."""


def person_name_sql(username: str) -> str:
    """SQL of the name people know the user ``username`` (an SQL expression) by: the name of
    the person the account belongs to, else the username itself."""
    return (
        f"coalesce((SELECT p.name FROM users u JOIN people p ON p.id = u.person_id "
        f"WHERE u.username = {username}), {username})"
    )


_INCIDENT_COLS = (
    "id, site_id, occurred_at, kind, description, policy_id, claim_status, amount_cny, "
    "created_at, created_by, claim_updated_at, claim_updated_by, "
    f"{person_name_sql('incidents.claim_updated_by')} AS claim_updated_by_name"
)


def create_policy(*, conn: Conn, data: PolicyCreate, scope: SiteScope) -> PolicyPublic:
    """Store a policy; ConflictError (409) when the number exists, NotFoundError (404) for an
    unknown site."""
    if not scope.allows(data.site_id):
        raise NotFoundError(f"site {data.site_id} not found")
    if conn.execute("SELECT 1 FROM sites WHERE id = %s", (data.site_id,)).fetchone() is None:
        raise NotFoundError(f"site {data.site_id} not found")
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            f"""INSERT INTO policies (site_id, insurer, policy_no, cover_cny, premium_cny,
                                      starts_on, ends_on)
                VALUES (%(site_id)s, %(insurer)s, %(policy_no)s, %(cover_cny)s, %(premium_cny)s,
                        %(starts_on)s, %(ends_on)s)
                ON CONFLICT (policy_no) DO NOTHING RETURNING {_POLICY_COLS}""",
            data.model_dump(),
        ).fetchone()
    if row is None:
        raise ConflictError(f"policy number {data.policy_no} already exists")
    return PolicyPublic.model_validate(row)


def list_policies(
    *,
    conn: Conn,
    scope: SiteScope,
    site_id: str | None,
    insurer: str | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> list[PolicyPublic]:
    """Policies in scope, newest period first, ``limit`` from ``offset`` (None: all);
    ``insurer``: only that insurer's (an insurer's account reads its own policies, not a
    rival's premium on a canteen they both cover)."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            f"""SELECT {_POLICY_COLS} FROM policies
                WHERE (%(site)s::text IS NULL OR site_id = %(site)s) AND {scope.clause()}
                  AND (%(insurer)s::text IS NULL OR insurer = %(insurer)s)
                ORDER BY starts_on DESC, id DESC LIMIT %(limit)s OFFSET %(offset)s""",
            {
                "site": site_id,
                "insurer": insurer,
                "limit": limit,
                "offset": offset,
                **scope.params(),
            },
        ).fetchall()
    return [PolicyPublic.model_validate(r) for r in rows]


def policy_in_force(
    *, conn: Conn, site_id: str, at: datetime, scope: SiteScope, insurer: str | None = None
) -> PolicyPublic | None:
    """The site's policy in force at ``at``, or None (``insurer``: only if it is theirs)."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            f"""SELECT {_POLICY_COLS} FROM policies
                WHERE id = CASE WHEN %(insurer)s::text IS NULL
                                THEN bk_policy_in_force(%(site)s, %(at)s, %(tz)s)
                                ELSE {own_policy_sql("%(site)s", "%(at)s::timestamptz")} END
                  AND {scope.clause()}""",
            {
                "site": site_id,
                "at": at,
                "tz": region_zone_name(),
                "insurer": insurer,
                **scope.params(),
            },
        ).fetchone()
    return None if row is None else PolicyPublic.model_validate(row)


def ticket_policy(
    *, conn: Conn, ticket_id: int, scope: SiteScope, insurer: str | None = None
) -> PolicyPublic | None:
    """The policy in force when the ticket opened (``insurer``: that insurer's, not a
    rival's premium); NotFoundError for an unknown ticket."""
    with conn.cursor(row_factory=dict_row) as cur:
        t = cur.execute(
            f"SELECT site_id, opened_at FROM tickets WHERE id = %(id)s AND {scope.clause()}",
            {"id": ticket_id, **scope.params()},
        ).fetchone()
        if t is None:
            raise NotFoundError(f"ticket {ticket_id} not found")
    return policy_in_force(
        conn=conn, site_id=t["site_id"], at=t["opened_at"], scope=scope, insurer=insurer
    )


def create_incident(
    *, conn: Conn, data: IncidentCreate, scope: SiteScope, actor: str
) -> IncidentPublic:
    """Record an incident, linked to the policy in force when it occurred."""
    if not scope.allows(data.site_id):
        raise NotFoundError(f"site {data.site_id} not found")
    if conn.execute("SELECT 1 FROM sites WHERE id = %s", (data.site_id,)).fetchone() is None:
        raise NotFoundError(f"site {data.site_id} not found")
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            f"""INSERT INTO incidents (site_id, occurred_at, kind, description, policy_id,
                                       claim_status, amount_cny, created_by,
                                       claim_updated_at, claim_updated_by)
                VALUES (%(site_id)s, %(occurred_at)s, %(kind)s, %(description)s,
                        bk_policy_in_force(%(site_id)s, %(occurred_at)s, %(tz)s),
                        %(claim_status)s, %(amount_cny)s, %(actor)s,
                        CASE WHEN %(claim_status)s <> 'none' THEN now() END,
                        CASE WHEN %(claim_status)s <> 'none' THEN %(actor)s END)
                RETURNING {_INCIDENT_COLS}""",
            {
                **data.model_dump(),
                "claim_status": data.claim_status.value,
                "actor": actor,
                "tz": region_zone_name(),
            },
        ).fetchone()
        assert row is not None
        if data.claim_status is not ClaimStatus.NONE:  # recorded with a claim under way
            cur.execute(
                """INSERT INTO incident_claim_events
                       (incident_id, at, actor, from_status, to_status, amount_cny, note)
                   VALUES (%s, %s, %s, 'none', %s, %s, 'recorded with the incident')""",
                (row["id"], row["claim_updated_at"], actor, data.claim_status.value,
                 data.amount_cny),
            )  # fmt: skip
    return IncidentPublic.model_validate(row)


def get_incident(
    *, conn: Conn, incident_id: int, scope: SiteScope, insurer: str | None = None
) -> IncidentPublic | None:
    """One incident, or None (absent, out of scope, or not under ``insurer``'s policy)."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            f"""SELECT {_INCIDENT_COLS} FROM incidents
                WHERE id = %(id)s AND {scope.clause()} AND {_INCIDENT_OF_INSURER}""",
            {"id": incident_id, "insurer": insurer, "tz": region_zone_name(), **scope.params()},
        ).fetchone()
    return None if row is None else IncidentPublic.model_validate(row)


def list_incidents(
    *,
    conn: Conn,
    scope: SiteScope,
    site_id: str | None,
    insurer: str | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> list[IncidentPublic]:
    """Incidents in scope, newest first, ``limit`` from ``offset`` (None: all); ``insurer``:
    those its own policies covered."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            f"""SELECT {_INCIDENT_COLS} FROM incidents
                WHERE (%(site)s::text IS NULL OR site_id = %(site)s) AND {scope.clause()}
                  AND {_INCIDENT_OF_INSURER}
                ORDER BY occurred_at DESC, id DESC LIMIT %(limit)s OFFSET %(offset)s""",
            {
                "site": site_id,
                "insurer": insurer,
                "tz": region_zone_name(),
                "limit": limit,
                "offset": offset,
                **scope.params(),
            },
        ).fetchall()
    return [IncidentPublic.model_validate(r) for r in rows]


def _json_default(o: object) -> str:
    if isinstance(o, datetime | date):
        return o.isoformat()
    if isinstance(o, Decimal):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _dumps(obj: object) -> bytes:
    return json.dumps(obj, ensure_ascii=False, indent=2, default=_json_default).encode()


_EXT = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}


def write_claim_bundle(
    out: IO[bytes],
    *,
    conn: Conn,
    store: EvidenceStore,
    incident_id: int,
    scope: SiteScope,
    now: datetime,
    insurer: str | None = None,
) -> None:
    """Write the evidence bundle of an incident as a zip to ``out``; NotFoundError when absent
    (raised before anything is written).

    Layout: ``manifest.json`` (incident, policy, window, file list), ``tickets/<no>.json``
    (ticket, timeline, findings, evidence refs), ``evidence/<sha256>.<ext>`` (snapshots,
    rectification and inspection photos), ``sensors.csv`` (readings of the site's sensors
    from 24 h before to 24 h after the incident) and ``sensors_hourly.csv`` (hourly
    min / avg / max where retention has dropped the raw readings; the manifest's
    ``sensor_trace`` says ``raw``, ``hourly``, ``raw+hourly`` or ``none``).
    """
    incident = get_incident(conn=conn, incident_id=incident_id, scope=scope, insurer=insurer)
    if incident is None:
        raise NotFoundError(f"incident {incident_id} not found")
    if insurer is not None:  # an insurer's bundle names its own policy, never a rival's
        own = policy_in_force(
            conn=conn, site_id=incident.site_id, at=incident.occurred_at, scope=scope,
            insurer=insurer,
        )  # fmt: skip
        incident = incident.model_copy(update={"policy_id": own.id if own else None})
    tz = region_zone_name()
    lo, hi = incident.occurred_at - BUNDLE_WINDOW, incident.occurred_at + BUNDLE_WINDOW
    files: list[str] = []
    with (
        conn.cursor(row_factory=dict_row) as cur,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf,
    ):
        policy = None
        if incident.policy_id is not None:
            policy = cur.execute(
                f"SELECT {_POLICY_COLS} FROM policies WHERE id = %s", (incident.policy_id,)
            ).fetchone()
        site = cur.execute(
            "SELECT id, name, address, region_id FROM sites WHERE id = %s", (incident.site_id,)
        ).fetchone()
        # Tickets active in the window: opened before its end, not closed before its start.
        tickets = cur.execute(
            f"""SELECT t.*, CASE WHEN %(insurer)s::text IS NULL
                                 THEN bk_policy_in_force(t.site_id, t.opened_at, %(tz)s)
                                 ELSE {own_policy_sql("t.site_id", "t.opened_at")}
                            END AS policy_id
               FROM tickets t
               WHERE t.site_id = %(site)s AND t.opened_at <= %(hi)s
                 AND (t.closed_at IS NULL OR t.closed_at >= %(lo)s)
               ORDER BY t.opened_at, t.id""",
            {"insurer": insurer, "tz": tz, "site": incident.site_id, "hi": hi, "lo": lo},
        ).fetchall()
        shas: dict[str, str] = {}
        for t in tickets:
            events = cur.execute(TIMELINE_SQL, (t["id"],)).fetchall()
            findings = cur.execute(
                "SELECT id, finding_key, kind, subject, rule, tier, occurred_at, payload "
                "FROM findings WHERE ticket_id = %s ORDER BY id",
                (t["id"],),
            ).fetchall()
            refs = [
                str(r["sha256"])
                for r in cur.execute(
                    """SELECT v.evidence_sha256 AS sha256 FROM violations v
                       JOIN findings f ON f.ticket_id = %(t)s AND f.kind = 'violation'
                            AND f.payload->>'event_id' = v.event_id
                       WHERE v.evidence_sha256 IS NOT NULL
                       UNION
                       SELECT te.sha256 FROM ticket_evidence te WHERE te.ticket_id = %(t)s""",
                    {"t": t["id"]},
                ).fetchall()
            ]
            for s in refs:
                shas.setdefault(s, f"ticket {t['ticket_no']}")
            name = f"tickets/{t['ticket_no']}.json"
            zf.writestr(
                name,
                _dumps({"ticket": t, "events": events, "findings": findings, "evidence": refs}),
            )
            files.append(name)
        for r in cur.execute(
            """SELECT p.sha256, i.id FROM inspection_photos p
               JOIN inspections i ON i.id = p.inspection_id
               WHERE i.site_id = %s AND i.started_at BETWEEN %s AND %s""",
            (incident.site_id, lo - timedelta(days=30), hi),
        ).fetchall():
            shas.setdefault(str(r["sha256"]), f"inspection {r['id']}")
        missing: list[str] = []
        for sha, why in sorted(shas.items()):
            blob = load_bytes(conn, store, sha)
            if blob is None:
                missing.append(sha)
                continue
            name = f"evidence/{sha}.{_EXT.get(blob[0], 'bin')}"
            zf.writestr(name, blob[1])
            files.append(name)
            logger.debug("bundle %s: evidence %s from %s", incident_id, sha, why)
        rows = 0
        first_raw: dict[str, datetime] = {}  # each sensor's first raw reading in the window
        # streamed row by row into the zip: two days of a site's sensors can be large
        with (
            conn.cursor() as raw_cur,
            io.TextIOWrapper(zf.open("sensors.csv", "w"), encoding="utf-8", newline="") as trace,
        ):
            w = csv.writer(trace)
            w.writerow(["sensor_id", "ts", "temp_c", "humidity_pct", "door_open", "battery_pct"])
            raw_cur.execute(
                # the raw readings and those kept for the incident (incident_traces): after
                # raw retention only the kept ones are left; before it, the same rows twice
                """SELECT sensor_id, ts, temp_c, humidity_pct, door_open, battery_pct FROM (
                       SELECT r.sensor_id, r.ts, r.temp_c, r.humidity_pct, r.door_open,
                              r.battery_pct
                       FROM sensor_readings r JOIN sensors s ON s.id = r.sensor_id
                       WHERE s.site_id = %(site)s AND r.ts BETWEEN %(lo)s AND %(hi)s
                       UNION
                       SELECT k.sensor_id, k.ts, k.temp_c, k.humidity_pct, k.door_open,
                              k.battery_pct
                       FROM incident_sensor_readings k WHERE k.incident_id = %(incident)s
                   ) t
                   ORDER BY sensor_id, ts""",
                {"site": incident.site_id, "lo": lo, "hi": hi, "incident": incident_id},
            )
            for rec in raw_cur:
                first_raw.setdefault(str(rec[0]), rec[1])
                w.writerow([rec[0], rec[1].isoformat(), *("" if v is None else v for v in rec[2:])])
                rows += 1
        files.append("sensors.csv")
        # Raw readings are kept 400 days on TimescaleDB (retention drops whole days, oldest
        # first), the hourly rollup longer: where a sensor's raw trace is gone for the window
        # or for its start, the bundle carries that sensor's hours before its first raw
        # reading, and the manifest says which trace it is. Hours the rollup lacks too were
        # hours without readings; nothing is added for them.
        hourly = 0
        hourly_trace = io.StringIO()
        hw = csv.writer(hourly_trace)
        hw.writerow(["sensor_id", "hour", "temp_min", "temp_avg", "temp_max", "n"])
        for rec in conn.execute(
            """SELECT h.sensor_id, h.bucket, h.temp_min, h.temp_avg, h.temp_max, h.n
               FROM readings_1h h JOIN sensors s ON s.id = h.sensor_id
               WHERE s.site_id = %s AND h.bucket > %s AND h.bucket <= %s
               ORDER BY h.sensor_id, h.bucket""",
            (incident.site_id, lo - timedelta(hours=1), hi),
        ):
            first = first_raw.get(str(rec[0]))
            if first is not None and rec[1] >= first:
                continue  # the raw readings cover this hour
            hw.writerow([rec[0], rec[1].isoformat(), *rec[2:]])
            hourly += 1
        if hourly:
            zf.writestr("sensors_hourly.csv", hourly_trace.getvalue())
            files.append("sensors_hourly.csv")
        trace_kind = "+".join(k for k, n in (("raw", rows), ("hourly", hourly)) if n) or "none"
        manifest = {
            "schema_version": 1,
            "generated_at": now,
            "incident": incident.model_dump(),
            "policy": policy,
            "site": site,
            "window": {"from": lo, "to": hi},
            "claim_history": cur.execute(
                f"""SELECT at, actor,
                           {person_name_sql("incident_claim_events.actor")} AS actor_name,
                           from_status, to_status, amount_cny, note
                    FROM incident_claim_events WHERE incident_id = %s ORDER BY id""",
                (incident_id,),
            ).fetchall(),
            "tickets": [t["ticket_no"] for t in tickets],
            "sensor_readings": rows,
            "sensor_hours": hourly,
            "sensor_trace": trace_kind,
            "evidence_missing": missing,
            "files": files,
        }
        zf.writestr("manifest.json", _dumps(manifest))
    logger.info(
        "claim bundle of incident %s: %d ticket(s), %d evidence file(s), %d reading(s)",
        incident_id,
        len(tickets),
        len(shas) - len(missing),
        rows,
        extra={"site_id": incident.site_id},
    )
