"""The claim of an incident under the canteen's liability policy (食品安全责任险理赔), step by step.

A claim is filed with the insurer, which accepts or rejects it, and an accepted claim is paid.
The canteen's people, the regulator or an administrator record each step as it happens (the
insurer's own account stays read-only, as its risk record is); every step is kept with who
recorded it, when, the amount and a note, and travels with the incident's evidence bundle.
A step out of order (paying a rejected claim, filing one twice) is refused with 409 rather
than silently rewriting the history an insurer or a court may read later.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.rows import dict_row
from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.auth.scope import SiteScope
from api.services.inspections import ConflictError, NotFoundError
from api.services.insurance import ClaimStatus, get_incident, person_name_sql
from bkcommon.errors import RequestError

Conn = psycopg.Connection[Any]

NEXT: dict[ClaimStatus, frozenset[ClaimStatus]] = {
    ClaimStatus.NONE: frozenset({ClaimStatus.FILED}),
    ClaimStatus.FILED: frozenset({ClaimStatus.ACCEPTED, ClaimStatus.REJECTED}),
    ClaimStatus.ACCEPTED: frozenset({ClaimStatus.PAID, ClaimStatus.REJECTED}),
    ClaimStatus.REJECTED: frozenset({ClaimStatus.FILED}),  # filed again, with more evidence
    ClaimStatus.PAID: frozenset(),
}
"""Where a claim may go from each state."""


class ClaimInputError(RequestError):
    """A step the stored claim makes incomplete (422): paid with no amount on record."""

    status_code = 422


class ClaimUpdate(BaseModel):
    """One step of a claim: its new state, the amount (claimed, agreed or paid; left out, the
    amount on record stays) and a note."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    claim_status: ClaimStatus
    amount_cny: Decimal | None = Field(default=None, ge=0, max_digits=14, decimal_places=2)
    note: str = Field(default="", max_length=2000)

    @model_validator(mode="after")
    def _rejected_has_reason(self) -> ClaimUpdate:
        if self.claim_status is ClaimStatus.REJECTED and not self.note:
            raise ValueError("note: a rejected claim needs the insurer's reason")
        return self


class ClaimEventPublic(BaseModel):
    """One recorded step of a claim."""

    id: int
    at: datetime
    actor: str
    actor_name: str | None = Field(
        default=None,
        description="Who recorded the step as people know them: the person's name where the "
        "user has one, else the username.",
    )
    from_status: ClaimStatus
    to_status: ClaimStatus
    amount_cny: Decimal | None
    note: str


def update_claim(
    *, conn: Conn, incident_id: int, data: ClaimUpdate, scope: SiteScope, actor: str
) -> ClaimEventPublic:
    """Record the next step of an incident's claim; NotFoundError (absent or out of scope),
    ConflictError (a step that does not follow the current state)."""
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            f"""SELECT claim_status, amount_cny FROM incidents
                WHERE id = %(id)s AND {scope.clause()} FOR UPDATE""",
            {"id": incident_id, **scope.params()},
        ).fetchone()
        if row is None:
            raise NotFoundError(f"incident {incident_id} not found")
        now = ClaimStatus(row["claim_status"])
        if data.claim_status not in NEXT[now]:
            allowed = ", ".join(sorted(s.value for s in NEXT[now])) or "nothing (paid)"
            raise ConflictError(
                f"claim is {now.value}: it can go to {allowed}, not {data.claim_status.value}"
            )
        amount = data.amount_cny if data.amount_cny is not None else row["amount_cny"]
        if data.claim_status is ClaimStatus.PAID and amount is None:
            raise ClaimInputError("amount_cny: a paid claim needs the amount paid")
        event = cur.execute(
            f"""INSERT INTO incident_claim_events
                    (incident_id, actor, from_status, to_status, amount_cny, note)
                VALUES (%s, %s, %s, %s, %s, %s)
                RETURNING id, at, actor, from_status, to_status, amount_cny, note,
                          {person_name_sql("incident_claim_events.actor")} AS actor_name""",
            (incident_id, actor, now.value, data.claim_status.value, amount, data.note),
        ).fetchone()
        assert event is not None
        cur.execute(
            """UPDATE incidents SET claim_status = %s, amount_cny = %s,
                      claim_updated_at = %s, claim_updated_by = %s
               WHERE id = %s""",
            (data.claim_status.value, amount, event["at"], actor, incident_id),
        )
    return ClaimEventPublic.model_validate(event)


def claim_history(
    *, conn: Conn, incident_id: int, scope: SiteScope, insurer: str | None = None
) -> list[ClaimEventPublic]:
    """Every recorded step of an incident's claim, oldest first; NotFoundError when the
    incident is absent, out of scope or (``insurer``) not under that insurer's policy."""
    if get_incident(conn=conn, incident_id=incident_id, scope=scope, insurer=insurer) is None:
        raise NotFoundError(f"incident {incident_id} not found")
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            f"""SELECT id, at, actor, from_status, to_status, amount_cny, note,
                       {person_name_sql("incident_claim_events.actor")} AS actor_name
                FROM incident_claim_events WHERE incident_id = %s ORDER BY id""",
            (incident_id,),
        ).fetchall()
    return [ClaimEventPublic.model_validate(r) for r in rows]
